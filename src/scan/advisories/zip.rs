//! Just enough of ZIP to read the OSV exports (`all.zip`, one JSON file per advisory):
//! the central directory (ZIP64 included: the npm export has more than 65,535 entries),
//! stored and deflated entries, CRC-checked. Reads entry by entry from the file, so memory
//! holds the central directory and one entry at a time. Every size is capped: a hostile
//! archive cannot make the import allocate more than [`MAX_ENTRY_BYTES`] per entry.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Largest uncompressed entry read (OSV records are a few KiB; the largest are ~1 MiB).
pub const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;
/// Largest central directory accepted.
const MAX_CENTRAL_DIR: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("cannot read the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a zip archive (or a damaged one): {0}")]
    Format(&'static str),
}

pub struct EntryInfo {
    pub name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// What happened to one entry.
pub enum Entry<'a> {
    Data(&'a [u8]),
    /// Too large, encrypted, an unsupported method or a bad CRC: skipped, with the reason.
    Skipped(&'static str),
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

const EOCD: u32 = 0x0605_4b50;
const EOCD64: u32 = 0x0606_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

/// Is this file a zip (by its first bytes)?
pub fn looks_like_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && (u32::from_le_bytes(magic) == LOCAL || u32::from_le_bytes(magic) == EOCD)
}

/// Call `f` with every file entry (directories are skipped), in central-directory order.
pub fn for_each_entry(
    path: &Path,
    mut f: impl FnMut(&EntryInfo, Entry<'_>),
) -> Result<(), ZipError> {
    let mut file = File::open(path)?;
    let entries = central_directory(&mut file)?;
    let mut buf = Vec::new();
    for e in &entries {
        if e.name.ends_with('/') {
            continue;
        }
        if e.flags & 1 != 0 {
            f(e, Entry::Skipped("encrypted"));
            continue;
        }
        if e.uncompressed > MAX_ENTRY_BYTES || e.compressed > MAX_ENTRY_BYTES {
            f(e, Entry::Skipped("too large"));
            continue;
        }
        let data_start = local_data_offset(&mut file, e)?;
        file.seek(SeekFrom::Start(data_start))?;
        buf.clear();
        (&mut file).take(e.compressed).read_to_end(&mut buf)?;
        if buf.len() as u64 != e.compressed {
            return Err(ZipError::Format("entry runs past the end of the file"));
        }
        let data = match e.method {
            0 => std::mem::take(&mut buf),
            8 => match miniz_oxide::inflate::decompress_to_vec_with_limit(
                &buf,
                MAX_ENTRY_BYTES as usize,
            ) {
                Ok(d) => d,
                Err(_) => {
                    f(e, Entry::Skipped("corrupt deflate data"));
                    continue;
                }
            },
            _ => {
                f(e, Entry::Skipped("unsupported compression method"));
                continue;
            }
        };
        if crc32fast::hash(&data) != e.crc || data.len() as u64 != e.uncompressed {
            f(e, Entry::Skipped("CRC or size mismatch"));
        } else {
            f(e, Entry::Data(&data));
        }
        if e.method == 0 {
            buf = data;
        }
    }
    Ok(())
}

fn local_data_offset(file: &mut File, e: &EntryInfo) -> Result<u64, ZipError> {
    let mut h = [0u8; 30];
    file.seek(SeekFrom::Start(e.local_offset))?;
    file.read_exact(&mut h)?;
    if u32_at(&h, 0) != Some(LOCAL) {
        return Err(ZipError::Format("bad local header"));
    }
    let name_len = u64::from(u16_at(&h, 26).unwrap_or(0));
    let extra_len = u64::from(u16_at(&h, 28).unwrap_or(0));
    Ok(e.local_offset + 30 + name_len + extra_len)
}

fn central_directory(file: &mut File) -> Result<Vec<EntryInfo>, ZipError> {
    let len = file.seek(SeekFrom::End(0))?;
    // The end record is 22 bytes plus a comment of at most 65,535; the ZIP64 locator sits
    // just before it.
    let tail_len = len.min(22 + 65_535 + 20);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(EOCD))
        .ok_or(ZipError::Format("no end of central directory"))?;
    let bad = ZipError::Format("truncated end record");
    let mut count = u64::from(u16_at(&tail, eocd + 10).ok_or(bad)?);
    let mut cd_size = u64::from(u32_at(&tail, eocd + 12).ok_or(ZipError::Format("eocd"))?);
    let mut cd_offset = u64::from(u32_at(&tail, eocd + 16).ok_or(ZipError::Format("eocd"))?);
    if eocd >= 20 && u32_at(&tail, eocd - 20) == Some(EOCD64_LOCATOR) {
        let at = u64_at(&tail, eocd - 20 + 8).ok_or(ZipError::Format("zip64 locator"))?;
        let mut rec = [0u8; 56];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut rec)?;
        if u32_at(&rec, 0) != Some(EOCD64) {
            return Err(ZipError::Format("bad zip64 end record"));
        }
        count = u64_at(&rec, 32).unwrap_or(count);
        cd_size = u64_at(&rec, 40).unwrap_or(cd_size);
        cd_offset = u64_at(&rec, 48).unwrap_or(cd_offset);
    }
    if cd_size > MAX_CENTRAL_DIR || cd_offset.saturating_add(cd_size) > len {
        return Err(ZipError::Format("central directory out of bounds"));
    }
    let mut cd = vec![0u8; cd_size as usize];
    file.seek(SeekFrom::Start(cd_offset))?;
    file.read_exact(&mut cd)?;
    // Each entry takes at least 46 bytes, so `count` cannot make us allocate beyond that.
    let mut out = Vec::with_capacity((count as usize).min(cd.len() / 46 + 1));
    let mut i = 0;
    while i + 46 <= cd.len() {
        if u32_at(&cd, i) != Some(CENTRAL) {
            return Err(ZipError::Format("bad central directory entry"));
        }
        let h = &cd[i..];
        let get16 = |k| u16_at(h, k).unwrap_or(0);
        let get32 = |k| u32_at(h, k).unwrap_or(0);
        let name_len = usize::from(get16(28));
        let extra_len = usize::from(get16(30));
        let comment_len = usize::from(get16(32));
        let end = 46 + name_len + extra_len + comment_len;
        if h.len() < end {
            return Err(ZipError::Format("central directory entry truncated"));
        }
        let name = String::from_utf8_lossy(&h[46..46 + name_len]).into_owned();
        let mut uncompressed = u64::from(get32(24));
        let mut compressed = u64::from(get32(20));
        let mut local_offset = u64::from(get32(42));
        // ZIP64 extra field: present values replace the 0xFFFFFFFF placeholders, in order.
        let mut extra = &h[46 + name_len..46 + name_len + extra_len];
        while extra.len() >= 4 {
            let id = u16_at(extra, 0).unwrap_or(0);
            let size = usize::from(u16_at(extra, 2).unwrap_or(0));
            let body = extra.get(4..4 + size).unwrap_or(&[]);
            if id == 1 {
                let mut k = 0;
                for field in [&mut uncompressed, &mut compressed, &mut local_offset] {
                    if *field == 0xFFFF_FFFF {
                        if let Some(v) = u64_at(body, k) {
                            *field = v;
                            k += 8;
                        }
                    }
                }
            }
            extra = extra.get(4 + size..).unwrap_or(&[]);
        }
        out.push(EntryInfo {
            name,
            method: get16(10),
            flags: get16(8),
            crc: get32(16),
            compressed,
            uncompressed,
            local_offset,
        });
        i += end;
    }
    Ok(out)
}

/// A zip writer for tests: stored or deflated entries, optionally with ZIP64 end records.
#[cfg(test)]
pub fn write_test_zip(entries: &[(&str, &[u8])], deflate: bool, zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let (method, body) = if deflate {
            (8u16, miniz_oxide::deflate::compress_to_vec(data, 6))
        } else {
            (0u16, data.to_vec())
        };
        let mut local = Vec::new();
        local.extend(LOCAL.to_le_bytes());
        local.extend(20u16.to_le_bytes());
        local.extend(0u16.to_le_bytes());
        local.extend(method.to_le_bytes());
        local.extend([0u8; 4]);
        local.extend(crc.to_le_bytes());
        local.extend((body.len() as u32).to_le_bytes());
        local.extend((data.len() as u32).to_le_bytes());
        local.extend((name.len() as u16).to_le_bytes());
        local.extend(0u16.to_le_bytes());
        local.extend(name.as_bytes());
        out.extend(&local);
        out.extend(&body);
        central.extend(CENTRAL.to_le_bytes());
        central.extend([20, 0, 20, 0]);
        central.extend(0u16.to_le_bytes());
        central.extend(method.to_le_bytes());
        central.extend([0u8; 4]);
        central.extend(crc.to_le_bytes());
        central.extend((body.len() as u32).to_le_bytes());
        let extra: Vec<u8> = if zip64 {
            let mut x = Vec::new();
            x.extend(1u16.to_le_bytes());
            x.extend(8u16.to_le_bytes());
            x.extend(u64::from(offset).to_le_bytes());
            x
        } else {
            Vec::new()
        };
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend((extra.len() as u16).to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend([0u8; 8]);
        central.extend(if zip64 { 0xFFFF_FFFF } else { offset }.to_le_bytes());
        central.extend(name.as_bytes());
        central.extend(&extra);
    }
    let cd_offset = out.len() as u64;
    out.extend(&central);
    let n = entries.len() as u64;
    if zip64 {
        let eocd64_at = out.len() as u64;
        out.extend(EOCD64.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend([45, 0, 45, 0]);
        out.extend([0u8; 8]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u64).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(EOCD64_LOCATOR.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(eocd64_at.to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    out.extend(EOCD.to_le_bytes());
    out.extend([0u8; 4]);
    let small = |v: u64| if zip64 { 0xFFFF } else { v as u16 };
    out.extend(small(n).to_le_bytes());
    out.extend(small(n).to_le_bytes());
    out.extend(
        if zip64 {
            0xFFFF_FFFF
        } else {
            central.len() as u32
        }
        .to_le_bytes(),
    );
    out.extend(if zip64 { 0xFFFF_FFFF } else { cd_offset as u32 }.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entries = Vec<(String, Result<Vec<u8>, &'static str>)>;

    fn read_all(bytes: &[u8]) -> Result<Entries, ZipError> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let mut out = Vec::new();
        for_each_entry(tmp.path(), |e, d| {
            out.push((
                e.name.clone(),
                match d {
                    Entry::Data(b) => Ok(b.to_vec()),
                    Entry::Skipped(why) => Err(why),
                },
            ))
        })?;
        Ok(out)
    }

    #[test]
    fn stored_deflated_and_zip64() {
        let big = "x".repeat(10_000);
        let entries: &[(&str, &[u8])] =
            &[("a.json", b"{\"id\":1}"), ("dir/b.json", big.as_bytes())];
        for (deflate, zip64) in [(false, false), (true, false), (true, true)] {
            let got = read_all(&write_test_zip(entries, deflate, zip64)).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0], ("a.json".into(), Ok(b"{\"id\":1}".to_vec())));
            assert_eq!(got[1].1.as_ref().unwrap().len(), 10_000);
        }
    }

    #[test]
    fn corruption_is_reported_not_panicked() {
        let mut z = write_test_zip(&[("a.json", b"hello world")], false, false);
        // Flip a data byte: the CRC catches it.
        let pos = z.windows(5).position(|w| w == b"hello").unwrap();
        z[pos] = b'j';
        let got = read_all(&z).unwrap();
        assert_eq!(got[0].1, Err("CRC or size mismatch"));
        assert!(read_all(b"not a zip at all").is_err());
        assert!(read_all(&z[..z.len() - 5]).is_err());
        // Every truncation point fails cleanly.
        let whole = write_test_zip(&[("a.json", b"{}"), ("b.json", b"[]")], true, true);
        for cut in 0..whole.len() {
            let _ = read_all(&whole[..cut]);
        }
    }
}
