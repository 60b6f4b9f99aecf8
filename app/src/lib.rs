//! Quiesce's user interface: the HTML shell, the routes, the pages and the server functions.
//!
//! Policy: pages render and call server functions; server functions (under `api/`, one per file)
//! take the shared state from context, call `quiesce-core`, and map its errors to [`ApiError`].
//! No business logic and no SQL live in this crate. Everything that needs the server is behind
//! the `ssr` feature; the `hydrate` build links only the domain types.

pub mod api;
#[cfg(feature = "ssr")]
pub mod auth;
pub mod codec;
pub mod error;
pub mod live;
mod pages;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod window_cache;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, SsrMode, StaticSegment,
};

pub use error::ApiError;
use pages::layout::Layout;
/// Percent-encoding as pages and the success header use it.
pub use pages::urlencode;

/// The HTML document every page is rendered into.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // Content-hashed names when the build hashes them (`hash-files`), so the
                // server can let browsers cache them for good.
                <HashedStylesheet options=options.clone() id="leptos" />
                // Islands: only `#[island]` components run in the browser (`live`).
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: layout and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    pages::provide_flash();
    view! {
        <Title text="Quiesce" />
        // Signed-in pages render once their data is loaded (`SsrMode::Async`): the HTML is then
        // complete without JavaScript, so every page and form works with it switched off.
        <Router>
            // Unknown addresses get the 404 page inside the layout (the server answers them
            // through its file-and-error handler, which renders in order: complete without
            // JavaScript too).
            <Routes fallback=|| view! { <Layout><pages::NotFound /></Layout> }>
                <Route path=StaticSegment("login") view=pages::login::LoginPage />
                <Route path=StaticSegment("setup") view=pages::login::SetupPage />
                <Route
                    path=StaticSegment("")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::maintenance::MaintenancePage /></Layout> }
                />
                <Route
                    path=StaticSegment("mirrors")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::mirrors::MirrorsPage /></Layout> }
                />
                <Route
                    path=StaticSegment("peers")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::peers::PeersPage /></Layout> }
                />
                <Route
                    path=StaticSegment("history")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::history::HistoryPage /></Layout> }
                />
                <Route
                    path=(StaticSegment("history"), ParamSegment("id"))
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::history::WindowPage /></Layout> }
                />
                <Route
                    path=StaticSegment("about")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::about::AboutPage /></Layout> }
                />
                <Route
                    path=StaticSegment("account")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::account::AccountPage /></Layout> }
                />
                <Route
                    path=StaticSegment("users")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::users::UsersPage /></Layout> }
                />
                <Route
                    path=StaticSegment("planned")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::planned::PlannedPage /></Layout> }
                />
                <Route
                    path=StaticSegment("webhooks")
                    ssr=SsrMode::Async
                    view=|| view! { <Layout><pages::webhooks::WebhooksPage /></Layout> }
                />
            </Routes>
        </Router>
    }
}
