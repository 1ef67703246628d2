//! `fetch()` and response helpers for the browser loader: status and abort handling, body lengths,
//! URLs resolved against the page, small files read into WASM memory.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStream, ReadableStreamDefaultReader, Response};

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// How a loader fetches URLs: the `AbortSignal` that cancels it and the `fetch` function it calls
/// (`globalThis.fetch` when `None`; the JS facade passes its Cache Storage fetch here). An
/// `Option<&AbortSignal>` converts into one.
#[derive(Clone, Copy, Default)]
pub struct Net<'a> {
    pub signal: Option<&'a AbortSignal>,
    pub fetch: Option<&'a Function>,
}

impl<'a> From<Option<&'a AbortSignal>> for Net<'a> {
    fn from(signal: Option<&'a AbortSignal>) -> Net<'a> {
        Net {
            signal,
            fetch: None,
        }
    }
}

/// The body of `url`, copied into WASM memory (and counted there): for small text files such as
/// `config.json` and `tokenizer.json`, never for weights. `Ok(None)` on HTTP 404 when `optional`.
pub async fn fetch_bytes<'a>(
    gpu: &Gpu,
    url: &str,
    net: impl Into<Net<'a>>,
    optional: bool,
) -> Result<Option<Vec<u8>>> {
    fetch_bytes_counted(gpu.copy_stats(), url, net.into(), optional).await
}

/// [`fetch_bytes`], counted in `stats` (a GPU's or the CPU backend's).
pub(crate) async fn fetch_bytes_counted(
    stats: &crate::runtime::stats::CopyStats,
    url: &str,
    net: Net<'_>,
    optional: bool,
) -> Result<Option<Vec<u8>>> {
    let signal = net.signal;
    let response = match fetch(url, net).await {
        Err(Error::Http { status: 404, .. }) if optional => return Ok(None),
        other => other?,
    };
    let promise = response.array_buffer().map_err(js_io(url))?;
    let buffer = JsFuture::from(promise)
        .await
        .map_err(|e| abort_or_io(url, signal, e))?;
    let bytes = Uint8Array::new(&buffer).to_vec();
    stats.wasm_in(bytes.len() as u64);
    Ok(Some(bytes))
}

pub(crate) async fn fetch(url: &str, net: Net<'_>) -> Result<Response> {
    let signal = net.signal;
    let global = js_sys::global();
    let fetch: Function = match net.fetch {
        Some(f) => f.clone(),
        None => Reflect::get(&global, &"fetch".into())
            .map_err(js_io(url))?
            .dyn_into()
            .map_err(|_| Error::Io {
                source_name: url.into(),
                message: "this global scope has no fetch()".into(),
            })?,
    };
    let init = Object::new();
    if let Some(signal) = signal {
        Reflect::set(&init, &"signal".into(), signal).map_err(js_io(url))?;
    }
    let promise: Promise = fetch
        .call2(&global, &url.into(), &init)
        .map_err(js_io(url))?
        .unchecked_into();
    let response = JsFuture::from(promise)
        .await
        .map_err(|e| abort_or_io(url, signal, e))?;
    let response: Response = response.dyn_into().map_err(|_| Error::Io {
        source_name: url.into(),
        message: "the fetch function given did not resolve to a Response".into(),
    })?;
    check_status(url, &response)?;
    Ok(response)
}

/// `url` resolved against the page's (or worker's) location, so shard names resolve against it.
pub(crate) fn absolute_url(url: &str) -> Result<String> {
    let base = Reflect::get(&js_sys::global(), &"location".into())
        .and_then(|l| Reflect::get(&l, &"href".into()))
        .ok()
        .and_then(|h| h.as_string());
    let parsed = match base {
        Some(base) => web_sys::Url::new_with_base(url, &base),
        None => web_sys::Url::new(url),
    };
    Ok(parsed.map_err(js_io(url))?.href())
}

/// The body's length from `Content-Length`, unless the body is content-encoded (then the header gives
/// the compressed length, not what the stream yields).
pub(crate) fn content_length(response: &Response) -> Option<u64> {
    let headers = response.headers();
    if headers.get("content-encoding").ok().flatten().is_some() {
        return None;
    }
    headers.get("content-length").ok().flatten()?.parse().ok()
}

pub(crate) fn check_status(name: &str, response: &Response) -> Result<()> {
    if response.ok() {
        return Ok(());
    }
    Err(Error::Http {
        url: name.to_string(),
        status: response.status(),
    })
}

pub(crate) fn response_name(response: &Response) -> String {
    let url = response.url();
    if url.is_empty() {
        "Response".into()
    } else {
        url
    }
}

pub(crate) fn reader_of(
    name: &str,
    stream: &ReadableStream,
) -> Result<ReadableStreamDefaultReader> {
    stream.get_reader().dyn_into().map_err(|_| Error::Io {
        source_name: name.into(),
        message: "could not get a reader for the stream (already read?)".into(),
    })
}

pub(crate) fn abort_or_io(name: &str, signal: Option<&AbortSignal>, e: JsValue) -> Error {
    let abort_error = Reflect::get(&e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "AbortError");
    if abort_error || signal.is_some_and(|s| s.aborted()) {
        return Error::Aborted {
            source_name: name.into(),
        };
    }
    js_io(name)(e)
}

pub(crate) fn js_io(name: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |e| Error::Io {
        source_name: name.into(),
        message: Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| e.as_string())
            .unwrap_or_else(|| format!("{e:?}")),
    }
}
