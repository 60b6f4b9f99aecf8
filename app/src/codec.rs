//! How a page's resources carry their data from the server's render into the browser.
//!
//! Policy: JSON, as Leptos does by default, but decoded from bytes exactly the way server
//! functions decode their responses (`serde_json::from_slice`). serde_json compiles a separate
//! decoder per type for every kind of input it reads, so Leptos' default resource codec (which
//! reads `&str`) put a second copy of every domain type's decoder into the browser's WASM.
//! Every resource in this crate is made with [`load`].

use std::future::Future;

use leptos::prelude::Resource;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// JSON written as text and read back as bytes (see the module docs for why).
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A resource whose data travels with [`Json`].
pub type Loaded<T> = Resource<T, Json>;

/// A resource that runs `fetcher` whenever `source` changes (Leptos' `Resource::new`, with
/// [`Json`]).
#[track_caller]
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}
