//! A server function whose render was dropped (its client went away mid-page) finds no Leptos
//! context at all; that is an ordinary disconnect and must not log at ERROR, while a request whose
//! context lacks the state (a miswired server) still does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use leptos::prelude::{provide_context, Owner};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

struct Errors(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_dropped_render_logs_no_error_but_a_request_without_state_does() {
    let errors = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(Errors(errors.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // The render's owner is gone: no context at all.
        assert!(app::state::app_state().is_err());
        assert_eq!(errors.load(Ordering::SeqCst), 0, "a dropped render logged an error");

        // A live request whose context has no state: the server is wired wrong.
        let owner = Owner::new();
        owner.with(|| {
            provide_context(http::Request::new(()).into_parts().0);
            assert!(app::state::app_state().is_err());
        });
        assert_eq!(errors.load(Ordering::SeqCst), 1, "a miswired server logged no error");
    });
}
