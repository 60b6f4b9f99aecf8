//! The WASM entry point: hydrates the server-rendered page into the live application.

// The hydration code of the larger pages has deeply nested view types.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
