//! Models: one file a model, each a serde `Config` and layers with `load` and `forward`.

pub mod bert;
pub mod chat;
pub mod constrain;
pub mod efficientnet;
pub mod embedder;
pub mod fast_tokens;
pub mod generate;
pub mod linear;
pub mod llama;
pub mod ops;
pub mod rdn;
pub mod text;

/// The files of an image model's folder besides the weights (EfficientNet, RDN).
pub const IMAGE_FILES: &[crate::bridge::folder::FileSpec] =
    &[crate::bridge::folder::FileSpec::required("config.json")];

/// `config.json` and the weights (`model.safetensors`, memory-mapped) of a model folder: what the
/// image models' `from_dir` read.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_folder(
    gpu: &crate::gpu::Gpu,
    dir: &std::path::Path,
) -> crate::error::Result<(Vec<u8>, crate::bridge::Weights)> {
    let files = crate::bridge::folder::read_dir(dir, IMAGE_FILES)?;
    let config = files.required("config.json")?.to_vec();
    let weights = crate::bridge::native::load(gpu, &dir.join("model.safetensors"), &mut |_| {})?;
    Ok((config, weights))
}
