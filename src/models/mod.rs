//! Models: one file a model, each a serde `Config` and layers with `load` and `forward`.

pub mod bert;
pub mod chat;
pub mod constrain;
pub mod efficientnet;
pub mod embedder;
pub mod generate;
pub(crate) mod linear;
pub mod llama;
pub mod rdn;
pub mod text;

/// `config.json` and the weights (`model.safetensors`, memory-mapped) of a model folder: what the
/// image models' `from_dir` read.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_folder(
    gpu: &crate::gpu::Gpu,
    dir: &std::path::Path,
) -> crate::error::Result<(Vec<u8>, crate::bridge::Weights)> {
    let path = dir.join("config.json");
    let config = std::fs::read(&path).map_err(|e| crate::error::Error::Io {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    let weights = crate::bridge::native::load(gpu, &dir.join("model.safetensors"), &mut |_| {})?;
    Ok((config, weights))
}
