//! A minimal ustar writer: the files a run uploads to a host travel as one
//! tar stream on the stdin of one SSH session (extracted by the host's
//! `tar`), not one session per file.

use std::io;

/// One file of an archive: its relative path (`n1/counter.py`), mode and
/// contents.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) -> io::Result<()> {
    let text = format!("{value:o}");
    let width = field.len() - 1;
    if text.len() > width {
        return Err(io::Error::other(format!(
            "tar: {value} does not fit in {width} octal digits"
        )));
    }
    let pad = width - text.len();
    field[..pad].fill(b'0');
    field[pad..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
    Ok(())
}

/// One 512-byte header; `kind` is b'0' (file) or b'5' (directory).
fn header(path: &str, mode: u32, size: u64, kind: u8, mtime: u64) -> io::Result<[u8; 512]> {
    let mut h = [0u8; 512];
    let bytes = path.as_bytes();
    // Paths over 100 bytes go in the 155-byte prefix, split at a '/'.
    let (prefix, name) = if bytes.len() <= 100 {
        (&[][..], bytes)
    } else {
        let split = path[..path.len().min(156)]
            .rfind('/')
            .filter(|&i| i <= 155 && bytes.len() - i - 1 <= 100)
            .ok_or_else(|| io::Error::other(format!("tar: path too long: {path}")))?;
        (&bytes[..split], &bytes[split + 1..])
    };
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode & 0o7777))?;
    octal(&mut h[108..116], 0)?; // uid
    octal(&mut h[116..124], 0)?; // gid
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime)?;
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    // The checksum is computed with its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h[148..155], sum)?;
    h[155] = b' ';
    Ok(h)
}

/// An archive of `dirs` (made with mode 0755, in order) and `files`.
pub fn archive(dirs: &[String], files: &[Entry]) -> io::Result<Vec<u8>> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = Vec::new();
    for d in dirs {
        out.extend_from_slice(&header(&format!("{d}/"), 0o755, 0, b'5', mtime)?);
    }
    for f in files {
        out.extend_from_slice(&header(&f.path, f.mode, f.data.len() as u64, b'0', mtime)?);
        out.extend_from_slice(&f.data);
        let pad = (512 - f.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    // Two zero blocks end the archive.
    out.extend(std::iter::repeat_n(0u8, 1024));
    Ok(out)
}

/// Standard base64 (with `=` padding), for an archive sent inside a
/// command (`printf %s ... | base64 -d | tar -x`).
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn the_system_tar_extracts_what_we_write() {
        if std::process::Command::new("tar")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let long = format!("n1/{}/x.txt", "d".repeat(120));
        let data = archive(
            &["n1".into(), "n2".into()],
            &[
                Entry {
                    path: "n1/run.py".into(),
                    mode: 0o755,
                    data: b"#!/bin/sh\necho hi\n".to_vec(),
                },
                Entry {
                    path: "n2/empty".into(),
                    mode: 0o640,
                    data: Vec::new(),
                },
                Entry {
                    path: "n2/big".into(),
                    mode: 0o644,
                    data: (0..1300u32).map(|i| i as u8).collect(),
                },
                Entry {
                    path: long.clone(),
                    mode: 0o600,
                    data: b"long".to_vec(),
                },
            ],
        )
        .unwrap();
        assert_eq!(data.len() % 512, 0);
        let mut child = std::process::Command::new("tar")
            .args(["-xof", "-", "-C"])
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&data).unwrap();
        assert!(child.wait().unwrap().success());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            std::fs::read(dir.path().join("n1/run.py")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(mode("n1/run.py"), 0o755);
        assert_eq!(mode("n2/empty"), 0o640);
        assert_eq!(
            std::fs::read(dir.path().join("n2/big")).unwrap(),
            (0..1300u32).map(|i| i as u8).collect::<Vec<_>>()
        );
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), b"long");
        assert!(archive(
            &[],
            &[Entry {
                path: "a".repeat(300),
                mode: 0o644,
                data: vec![]
            }]
        )
        .is_err());
    }
}
