//! A model folder: the files a model reads besides its weights (config, tokenizer, …). Each model
//! names its files once (a [`FileSpec`] list next to the model: `models::embedder::EMBEDDER_FILES`,
//! `models::generate::HF_FILES`, `models::IMAGE_FILES`); this module reads such a list the same way
//! for every model, natively from a directory ([`read_dir`]) and on the web from a base URL
//! ([`fetch_folder`]), and the weights beside them ([`folder_url`] + `model.safetensors`).

use crate::error::{Error, Result};

/// A file a model folder holds, by its path inside the folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub name: &'static str,
    /// Absent is fine (the model has a default); else a missing file is an error naming it.
    pub optional: bool,
}

impl FileSpec {
    pub const fn required(name: &'static str) -> FileSpec {
        FileSpec {
            name,
            optional: false,
        }
    }

    pub const fn optional(name: &'static str) -> FileSpec {
        FileSpec {
            name,
            optional: true,
        }
    }
}

/// The files of a folder that were read, as bytes (an optional file that was absent is not here).
#[derive(Debug, Default)]
pub struct FolderFiles {
    /// The folder (a path or a URL), for messages.
    source: String,
    files: Vec<(&'static str, Vec<u8>)>,
}

impl FolderFiles {
    /// The bytes of `name`, if the folder had it.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The bytes of `name`, or an error naming the folder and the file.
    pub fn required(&self, name: &str) -> Result<&[u8]> {
        self.get(name).ok_or_else(|| Error::Io {
            source_name: format!("{}{name}", self.source),
            message: "not read from the model folder (not in its file list)".into(),
        })
    }
}

/// `base` with one trailing `/`: the URL files of the folder are relative to.
pub fn folder_url(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

/// Reads `specs` from the directory `dir`: a required file that cannot be read is an error naming
/// its path; an optional one that is absent is skipped (other errors on it still fail).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_dir(dir: &std::path::Path, specs: &[FileSpec]) -> Result<FolderFiles> {
    let mut files = Vec::with_capacity(specs.len());
    for spec in specs {
        let path = dir.join(spec.name);
        match std::fs::read(&path) {
            Ok(bytes) => files.push((spec.name, bytes)),
            Err(e) if spec.optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    source_name: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(FolderFiles {
        source: format!("{}/", dir.display()),
        files,
    })
}

/// Fetches `specs` relative to the folder URL `base` (the bytes pass through WASM memory and are
/// counted there): a required file that fails is an error naming its URL; an optional one that is
/// 404 is skipped.
#[cfg(target_arch = "wasm32")]
pub async fn fetch_folder(
    gpu: &crate::Gpu,
    base: &str,
    net: super::fetch::Net<'_>,
    specs: &[FileSpec],
) -> Result<FolderFiles> {
    fetch_folder_counted(gpu.copy_stats(), base, net, specs).await
}

/// [`fetch_folder`], counted in `stats` (a GPU's or the CPU backend's).
#[cfg(target_arch = "wasm32")]
pub(crate) async fn fetch_folder_counted(
    stats: &crate::runtime::stats::CopyStats,
    base: &str,
    net: super::fetch::Net<'_>,
    specs: &[FileSpec],
) -> Result<FolderFiles> {
    let base = folder_url(base);
    let mut files = Vec::with_capacity(specs.len());
    for spec in specs {
        let url = format!("{base}{}", spec.name);
        if let Some(bytes) =
            super::fetch::fetch_bytes_counted(stats, &url, net, spec.optional).await?
        {
            files.push((spec.name, bytes));
        }
    }
    Ok(FolderFiles {
        source: base,
        files,
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn a_folder_reads_its_list() {
        let dir = std::env::temp_dir().join(format!("webgpu-infer-folder-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        std::fs::write(dir.join("sub/extra.json"), b"[1]").unwrap();
        let specs = [
            FileSpec::required("config.json"),
            FileSpec::optional("sub/extra.json"),
            FileSpec::optional("absent.json"),
        ];
        let files = read_dir(&dir, &specs).unwrap();
        assert_eq!(files.get("config.json"), Some(&b"{}"[..]));
        assert_eq!(files.get("sub/extra.json"), Some(&b"[1]"[..]));
        assert_eq!(files.get("absent.json"), None);
        assert!(files.required("absent.json").is_err());
        // A required file that is missing names its path.
        match read_dir(&dir, &[FileSpec::required("tokenizer.json")]) {
            Err(Error::Io { source_name, .. }) => assert!(source_name.ends_with("tokenizer.json")),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
