//! The WASM entry point: hydrates the server-rendered page into the live application.

// The hydration code of the larger pages has deeply nested view types.
#![recursion_limit = "256"]

// The islands are exported from the `app` crate: linking it is what puts them in the module.
extern crate app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    app::live::mark_hydrated();
}
