//! Where the files of a local model are: `--model` given as a GGUF file, a folder holding one,
//! or a folder of safetensors with `config.json`, with the tokenizer and chat-template files
//! found beside the weights; and the one reader of a GGUF's header ([`read_gguf`]), which checks
//! what candle's reader would trust before it runs.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use candle_core::quantized::gguf_file;

use crate::input::{clip, clip_message};

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// One `.gguf` file (quantized or not).
    Gguf,
    /// A folder of `*.safetensors` with the model's `config.json`.
    Safetensors,
}

/// Where the files of a local model are.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// The `.gguf` file, or the folder holding `*.safetensors` and `config.json`.
    pub weights: PathBuf,
    pub format: WeightFormat,
    /// `tokenizer.json` beside the weights: required for safetensors; for a GGUF optional (the
    /// file's own vocabulary is used, and checked against it).
    pub tokenizer: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    /// `chat_template.jinja` beside the weights (newer Hugging Face repos ship the template so).
    pub chat_template: Option<PathBuf>,
}

impl ModelFiles {
    /// A GGUF file alone (its tokenizer and template come from its metadata).
    pub fn gguf(weights: PathBuf) -> ModelFiles {
        ModelFiles {
            weights,
            format: WeightFormat::Gguf,
            tokenizer: None,
            tokenizer_config: None,
            chat_template: None,
        }
    }
}

impl ModelFiles {
    /// Resolve `--model` given as a GGUF file, a folder holding one GGUF, or a folder of
    /// safetensors with config.json and tokenizer.json. A GGUF needs nothing beside it; a
    /// tokenizer.json, tokenizer_config.json or chat_template.jinja beside it are used when
    /// present. The error lists what was looked for.
    pub fn resolve(spec: &Path) -> Result<ModelFiles> {
        let (dir, weights, format) = if spec.is_file() {
            let dir = spec.parent().unwrap_or(Path::new(".")).to_path_buf();
            (dir, spec.to_path_buf(), WeightFormat::Gguf)
        } else if spec.is_dir()
            && spec.join("config.json").is_file()
            && !safetensors_in(spec)?.is_empty()
        {
            (
                spec.to_path_buf(),
                spec.to_path_buf(),
                WeightFormat::Safetensors,
            )
        } else if spec.is_dir() {
            let mut ggufs: Vec<PathBuf> = std::fs::read_dir(spec)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
                // A vision projector beside the model is not a language model.
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| super::stores::is_projector(&n.to_string_lossy()))
                })
                .collect();
            ggufs.sort();
            match ggufs.len() {
                0 => bail!(
                    "no model in {} (looked for <dir>/*.gguf, or <dir>/*.safetensors with <dir>/config.json and <dir>/tokenizer.json)",
                    spec.display()
                ),
                1 => (spec.to_path_buf(), ggufs.remove(0), WeightFormat::Gguf),
                _ => bail!(
                    "{} holds several .gguf files; name one: {}",
                    spec.display(),
                    ggufs
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        } else {
            bail!(
                "model `{}` not found: pass a .gguf file, a folder holding one, or a folder of safetensors with config.json and tokenizer.json",
                spec.display()
            );
        };
        let tokenizer = dir.join("tokenizer.json");
        if format == WeightFormat::Safetensors && !tokenizer.is_file() {
            bail!(
                "{} has no tokenizer.json ({}); copy the model's tokenizer.json there",
                weights.display(),
                tokenizer.display()
            );
        }
        let config = dir.join("tokenizer_config.json");
        let jinja = dir.join("chat_template.jinja");
        Ok(ModelFiles {
            weights,
            format,
            tokenizer: tokenizer.is_file().then_some(tokenizer),
            tokenizer_config: config.is_file().then_some(config),
            chat_template: jinja.is_file().then_some(jinja),
        })
    }
}

/// The `*.safetensors` files of a folder, sorted.
pub fn safetensors_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// Read a GGUF's header (metadata and tensor table, not the weights) with candle's reader, after
/// checking what candle would divide by or trust: `general.alignment` must be a power of two
/// (candle divides by it; 0 panicked, taking `models list` down with it), and afterwards every
/// tensor must fit in the file (its element count without overflow, its bytes before the
/// end). Candle's own caps bound the other counts by the bytes that remain. Errors are one
/// line, input they quote clipped.
pub fn read_gguf(file: &mut std::fs::File) -> Result<gguf_file::Content> {
    use std::io::{Seek, SeekFrom};
    let size = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let alignment = {
        let mut header = Header {
            r: std::io::BufReader::with_capacity(1 << 16, &mut *file),
            at: 0,
            size,
            wide: true,
        };
        header.alignment()
    }
    .map_err(|e| anyhow!(clip_message(&e)))?;
    if let Some(a) = alignment
        && !a.is_power_of_two()
    {
        bail!("general.alignment is {a}; a GGUF's alignment must be a power of two (32 usually)");
    }
    file.seek(SeekFrom::Start(0))?;
    let content =
        gguf_file::Content::read(file).map_err(|e| anyhow!(clip_message(&e.to_string())))?;
    for (name, t) in &content.tensor_infos {
        let dims = t.shape.dims();
        let bytes = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .map(|elems| elems / t.ggml_dtype.block_size())
            .and_then(|blocks| blocks.checked_mul(t.ggml_dtype.type_size()));
        let start = content.tensor_data_offset.saturating_add(t.offset);
        let remaining = size.saturating_sub(start);
        match bytes {
            None => bail!(
                "tensor `{}` claims dimensions {dims:?}, more elements than can be addressed",
                clip(name)
            ),
            Some(b) if b as u64 > remaining => bail!(
                "tensor `{}` needs {b} bytes at offset {start}, only {remaining} remaining in the file",
                clip(name)
            ),
            Some(_) => {}
        }
    }
    Ok(content)
}

/// A walk over a GGUF's metadata that reads only what it must (lengths and the alignment),
/// bounding every length by the bytes that remain.
struct Header<R> {
    r: R,
    /// Offset of the next byte.
    at: u64,
    size: u64,
    /// Lengths are u64 (GGUF v2, v3) rather than u32 (v1).
    wide: bool,
}

impl<R: std::io::BufRead + std::io::Seek> Header<R> {
    fn bytes<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("cut short at byte {} of the header", self.at))?;
        self.at += N as u64;
        Ok(b)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn len(&mut self) -> std::result::Result<u64, String> {
        if self.wide {
            Ok(u64::from_le_bytes(self.bytes()?))
        } else {
            Ok(u64::from(self.u32()?))
        }
    }

    fn skip(&mut self, n: u64, what: &str) -> std::result::Result<(), String> {
        if n > self.size.saturating_sub(self.at) {
            return Err(format!(
                "{what} of {n} bytes at byte {}, past the end of the file ({} bytes)",
                self.at, self.size
            ));
        }
        self.r
            .seek_relative(n as i64)
            .map_err(|e| format!("reading the header: {e}"))?;
        self.at += n;
        Ok(())
    }

    /// The alignment candle will use (`general.alignment` when it is a non-negative integer of
    /// at most 32 bits, its last occurrence), or None when the file does not say, or is not a
    /// GGUF candle reads (candle then names the problem).
    fn alignment(&mut self) -> std::result::Result<Option<u64>, String> {
        let magic = self.bytes::<4>()?;
        if &magic != b"GGUF" && &magic != b"FUGG" {
            return Ok(None);
        }
        self.wide = match self.u32()? {
            1 => false,
            2 | 3 => true,
            _ => return Ok(None),
        };
        let _tensors = self.len()?;
        let entries = self.len()?;
        let mut alignment = None;
        for _ in 0..entries {
            let key_len = self.len()?;
            let key = if key_len == "general.alignment".len() as u64 {
                let k = self.bytes::<17>()?;
                k == *b"general.alignment"
            } else {
                self.skip(key_len, "a metadata key")?;
                false
            };
            let ty = self.u32()?;
            if key {
                alignment = match ty {
                    0 => Some(u64::from(self.bytes::<1>()?[0])),
                    1 => Some(i8::from_le_bytes(self.bytes()?) as i64 as u64),
                    2 => Some(u64::from(u16::from_le_bytes(self.bytes()?))),
                    3 => Some(i16::from_le_bytes(self.bytes()?) as i64 as u64),
                    4 => Some(u64::from(self.u32()?)),
                    5 => Some(i32::from_le_bytes(self.bytes()?) as i64 as u64),
                    _ => {
                        self.value(ty, 0)?;
                        None
                    }
                }
                // A negative value is the default to candle (the last occurrence counts).
                .filter(|&a| (a as i64) >= 0);
            } else {
                self.value(ty, 0)?;
            }
        }
        Ok(alignment)
    }

    /// Pass over one value of GGUF type `ty`.
    fn value(&mut self, ty: u32, depth: usize) -> std::result::Result<(), String> {
        let fixed = |ty: u32| match ty {
            0 | 1 | 7 => Some(1u64),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match ty {
            8 => {
                let n = self.len()?;
                self.skip(n, "a string")
            }
            9 => {
                if depth > 64 {
                    return Err("metadata arrays nested more than 64 deep".into());
                }
                let elem = self.u32()?;
                let n = self.len()?;
                match fixed(elem) {
                    Some(w) => self.skip(n.saturating_mul(w), "an array"),
                    None => {
                        // Each element takes at least a byte: a count the bytes cannot hold is
                        // refused before the loop.
                        if n > self.size.saturating_sub(self.at) {
                            return Err(format!(
                                "an array of {n} elements at byte {}, more than the bytes left",
                                self.at
                            ));
                        }
                        (0..n).try_for_each(|_| self.value(elem, depth + 1))
                    }
                }
            }
            t => match fixed(t) {
                Some(w) => self.skip(w, "a value"),
                None => Err(format!("unknown metadata value type {t}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// A GGUF v3 header: `tensors` tensor entries (already encoded) and metadata entries.
    fn gguf(metadata: &[(&str, u32, &[u8])], tensors: &[Vec<u8>]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend((metadata.len() as u64).to_le_bytes());
        for (key, ty, value) in metadata {
            string(&mut b, key);
            b.extend(ty.to_le_bytes());
            b.extend(*value);
        }
        for t in tensors {
            b.extend(t);
        }
        b
    }

    fn read(bytes: &[u8]) -> Result<gguf_file::Content> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        std::fs::write(&p, bytes).unwrap();
        read_gguf(&mut std::fs::File::open(&p).unwrap())
    }

    #[test]
    fn an_alignment_candle_would_divide_by_is_an_error() {
        let mut llama = Vec::new();
        string(&mut llama, "llama");
        // The 102-byte file of issue 23: general.alignment = 0 (u32).
        let zero = gguf(
            &[
                ("general.architecture", 8, &llama),
                ("general.alignment", 4, &0u32.to_le_bytes()),
            ],
            &[],
        );
        assert_eq!(zero.len(), 102);
        let e = read(&zero).unwrap_err().to_string();
        assert!(e.contains("general.alignment is 0"), "{e}");
        let three = gguf(&[("general.alignment", 4, &3u32.to_le_bytes())], &[]);
        assert!(
            read(&three)
                .unwrap_err()
                .to_string()
                .contains("power of two")
        );
        // Set twice, the last one counts (as in candle's map): a good one after a bad one.
        let twice = gguf(
            &[
                ("general.alignment", 4, &0u32.to_le_bytes()),
                ("general.alignment", 4, &64u32.to_le_bytes()),
            ],
            &[],
        );
        assert_eq!(read(&twice).unwrap().tensor_data_offset % 64, 0);
        // A string array before it is walked over, lengths bounded by the file.
        let mut arr = 8u32.to_le_bytes().to_vec();
        arr.extend(2u64.to_le_bytes());
        string(&mut arr, "a");
        string(&mut arr, "bc");
        let ok = gguf(
            &[
                ("tokenizer.ggml.tokens", 9, &arr),
                ("general.alignment", 4, &16u32.to_le_bytes()),
            ],
            &[],
        );
        assert_eq!(read(&ok).unwrap().metadata.len(), 2);
        let mut huge = 8u32.to_le_bytes().to_vec();
        huge.extend(u64::MAX.to_le_bytes());
        let e = read(&gguf(&[("x", 9, &huge)], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the bytes left"), "{e}");
    }

    #[test]
    fn a_tensor_that_cannot_fit_the_file_is_an_error() {
        let tensor = |dims: &[u64]| {
            let mut t = Vec::new();
            string(&mut t, "w");
            t.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                t.extend(d.to_le_bytes());
            }
            t.extend(0u32.to_le_bytes()); // F32
            t.extend(0u64.to_le_bytes());
            t
        };
        // 2^32 x 2^32 elements: the count wraps to 0 in 64 bits, so it looked like no bytes.
        let e = read(&gguf(&[], &[tensor(&[1 << 32, 1 << 32])]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more elements than can be addressed"), "{e}");
        let e = read(&gguf(&[], &[tensor(&[1000])]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs 4000 bytes") && e.contains("remaining"),
            "{e}"
        );
    }
}
