//! Tar, as a stream: reading an archive chunk by chunk as it arrives, handing on each entry's
//! data as slices of the chunks it came in (never copied, never held whole), and writing the
//! headers and padding of a new archive. Reads ustar headers with PAX (`x`) and GNU (`L`) long
//! names and sizes, as Go's `archive/tar` writes them; checks every header's checksum, so a
//! damaged stream is an error rather than garbage.

use bytes::Bytes;

pub const BLOCK: usize = 512;
/// PAX records and GNU long names larger than this are not a real archive's.
const META_LIMIT: u64 = 1024 * 1024;

/// An entry's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    /// A hard or symbolic link.
    Link,
    Other,
}

/// What reading a chunk gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Start(Entry),
    /// The next bytes of the current entry's data.
    Data(Bytes),
    /// The current entry's data is complete.
    End,
}

/// A tar stream that is not one, or ends too soon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TarError(pub String);

/// Reads a tar stream; feed it with [`Reader::push`], end with [`Reader::finish`].
#[derive(Default)]
pub struct Reader {
    state: State,
    /// PAX or GNU values for the next entry.
    long_name: Option<String>,
    pax_size: Option<u64>,
}

#[derive(Default)]
enum State {
    #[default]
    Header,
    /// A header's first bytes, when it spans chunks.
    PartialHeader(Vec<u8>),
    Data {
        remaining: u64,
        padding: u64,
    },
    Meta {
        pax: bool,
        remaining: u64,
        padding: u64,
        bytes: Vec<u8>,
    },
    Skip {
        remaining: u64,
    },
    /// After the end-of-archive block: the rest is ignored.
    Ended,
}

impl Reader {
    /// Reads `chunk`; what it completed, in order.
    pub fn push(&mut self, chunk: &Bytes) -> Result<Vec<Item>, TarError> {
        let mut items = Vec::new();
        let mut at = 0;
        while at < chunk.len() {
            at = self.step(chunk, at, &mut items)?;
        }
        Ok(items)
    }

    /// The stream ended: an error unless it ended between entries.
    pub fn finish(&self) -> Result<(), TarError> {
        match self.state {
            State::Header | State::Ended => Ok(()),
            _ => Err(TarError(
                "the archive ended in the middle of an entry".to_owned(),
            )),
        }
    }

    /// Consumes what the current state takes from `chunk[at..]`; the new position.
    fn step(&mut self, chunk: &Bytes, at: usize, items: &mut Vec<Item>) -> Result<usize, TarError> {
        let available = chunk.len() - at;
        match &mut self.state {
            State::Ended => Ok(chunk.len()),
            State::Header if available >= BLOCK => {
                self.header(&chunk[at..at + BLOCK], items)?;
                Ok(at + BLOCK)
            }
            State::Header => {
                self.state = State::PartialHeader(chunk[at..].to_vec());
                Ok(chunk.len())
            }
            State::PartialHeader(block) => {
                let take = (BLOCK - block.len()).min(available);
                block.extend_from_slice(&chunk[at..at + take]);
                if block.len() == BLOCK {
                    let block = std::mem::take(block);
                    self.state = State::Header;
                    self.header(&block, items)?;
                }
                Ok(at + take)
            }
            State::Data { remaining, padding } => {
                let take = take(*remaining, available);
                items.push(Item::Data(chunk.slice(at..at + take)));
                *remaining -= take as u64;
                if *remaining == 0 {
                    items.push(Item::End);
                    self.state = skip(*padding);
                }
                Ok(at + take)
            }
            State::Meta {
                pax,
                remaining,
                padding,
                bytes,
            } => {
                let take = take(*remaining, available);
                bytes.extend_from_slice(&chunk[at..at + take]);
                *remaining -= take as u64;
                if *remaining == 0 {
                    let (pax, padding, bytes) = (*pax, *padding, std::mem::take(bytes));
                    self.state = skip(padding);
                    self.meta(pax, &bytes)?;
                }
                Ok(at + take)
            }
            State::Skip { remaining } => {
                let take = take(*remaining, available);
                *remaining -= take as u64;
                if *remaining == 0 {
                    self.state = State::Header;
                }
                Ok(at + take)
            }
        }
    }

    /// A complete header block.
    fn header(&mut self, block: &[u8], items: &mut Vec<Item>) -> Result<(), TarError> {
        if block.iter().all(|&byte| byte == 0) {
            self.state = State::Ended;
            return Ok(());
        }
        let header = parse_header(block)?;
        let size = match header.kind {
            b'x' | b'g' | b'L' | b'K' => header.size,
            _ => self.pax_size.take().unwrap_or(header.size),
        };
        let padding = padding_of(size);
        match header.kind {
            b'x' | b'L' => {
                if size > META_LIMIT {
                    return Err(TarError(format!(
                        "a tar extended header of {size} bytes is not a real archive's"
                    )));
                }
                self.state = State::Meta {
                    pax: header.kind == b'x',
                    remaining: size,
                    padding,
                    bytes: Vec::new(),
                };
                if size == 0 {
                    self.meta(header.kind == b'x', &[])?;
                    self.state = skip(padding);
                }
            }
            b'g' | b'K' => self.state = skip(size.saturating_add(padding)),
            flag => {
                let name = self.long_name.take().unwrap_or(header.name);
                let kind = match flag {
                    b'0' | 0 | b'7' => Kind::File,
                    b'5' => Kind::Directory,
                    b'1' | b'2' => Kind::Link,
                    _ => Kind::Other,
                };
                items.push(Item::Start(Entry { name, kind, size }));
                if size == 0 {
                    items.push(Item::End);
                    self.state = State::Header;
                } else {
                    self.state = State::Data {
                        remaining: size,
                        padding,
                    };
                }
            }
        }
        Ok(())
    }

    /// A PAX extended header's records, or a GNU long name, for the next entry.
    fn meta(&mut self, pax: bool, bytes: &[u8]) -> Result<(), TarError> {
        if !pax {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            self.long_name = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
            return Ok(());
        }
        for (key, value) in pax_records(bytes)? {
            match key.as_str() {
                "path" => self.long_name = Some(value),
                "size" => {
                    let size = value
                        .parse()
                        .map_err(|_| TarError(format!("a PAX size `{value}` is not a number")))?;
                    self.pax_size = Some(size);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |remaining| remaining.min(available))
}

fn skip(remaining: u64) -> State {
    if remaining == 0 {
        State::Header
    } else {
        State::Skip { remaining }
    }
}

/// The zeros after `size` bytes of data, up to the next block.
pub fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

struct Header {
    name: String,
    size: u64,
    kind: u8,
}

fn parse_header(block: &[u8]) -> Result<Header, TarError> {
    let recorded = numeric(&block[148..156])?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &byte)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(byte)
            }
        })
        .sum();
    if recorded != sum {
        return Err(TarError(
            "a tar header's checksum does not match: the stream is damaged".to_owned(),
        ));
    }
    let text = |field: &[u8]| {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    };
    let mut name = text(&block[0..100]);
    // POSIX ustar keeps a prefix of long names apart; GNU's magic (`ustar  `) uses the space
    // for other fields.
    if &block[257..263] == b"ustar\0" {
        let prefix = text(&block[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(Header {
        name,
        size: numeric(&block[124..136])?,
        kind: block[156],
    })
}

/// A numeric header field: octal digits (space or NUL padded), or base-256 when the high bit of
/// its first byte is set.
fn numeric(field: &[u8]) -> Result<u64, TarError> {
    let invalid = || TarError("a tar header has a malformed number".to_owned());
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        let mut value = u64::from(first & 0x7f);
        for &byte in rest {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(byte)))
                .ok_or_else(invalid)?;
        }
        return Ok(value);
    }
    let digits = field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| b != b' ' && b != 0);
    let mut value = 0u64;
    for &digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return Err(invalid());
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(value)
}

/// `LENGTH KEY=VALUE\n` records.
fn pax_records(mut bytes: &[u8]) -> Result<Vec<(String, String)>, TarError> {
    let invalid = || TarError("a PAX extended header is malformed".to_owned());
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|&b| b == b' ').ok_or_else(invalid)?;
        let length: usize = std::str::from_utf8(&bytes[..space])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(invalid)?;
        if length <= space + 1 || length > bytes.len() || bytes[length - 1] != b'\n' {
            return Err(invalid());
        }
        let record = String::from_utf8_lossy(&bytes[space + 1..length - 1]);
        let (key, value) = record.split_once('=').ok_or_else(invalid)?;
        records.push((key.to_owned(), value.to_owned()));
        bytes = &bytes[length..];
    }
    Ok(records)
}

/// The ustar header of a regular file `name` (at most 100 bytes) of `size` bytes, mode 0644,
/// owned by root, dated 1970; sizes past octal's 8 GiB in base-256, as GNU tar and Go read.
pub fn file_header(name: &str, size: u64) -> Result<[u8; BLOCK], TarError> {
    let mut block = [0u8; BLOCK];
    if name.len() > 100 {
        return Err(TarError(format!(
            "the name `{name}` is too long for a tar header"
        )));
    }
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    if size < 1 << 33 {
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = b'0';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(block)
}

/// The two zero blocks that end an archive.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive written by the `tar` crate (GNU long names, PAX), as `Bytes`.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Reads `bytes` in chunks of `size`; each entry's name and data.
    fn read(bytes: &[u8], size: usize) -> Result<Vec<(String, Vec<u8>)>, TarError> {
        let mut reader = Reader::default();
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for chunk in bytes.chunks(size) {
            for item in reader.push(&Bytes::copy_from_slice(chunk))? {
                match item {
                    Item::Start(entry) => entries.push((entry.name, Vec::new())),
                    Item::Data(data) => entries.last_mut().unwrap().1.extend_from_slice(&data),
                    Item::End => {}
                }
            }
        }
        reader.finish()?;
        Ok(entries)
    }

    #[test]
    fn entries_come_out_whole_whatever_the_chunks() {
        let long = format!("blobs/sha256/{}/{}", "a".repeat(64), "b".repeat(80));
        let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let bytes = archive(&[("one", b"1"), (&long, &big), ("empty", b"")]);
        for size in [1, 7, 511, 512, 513, 4096, bytes.len()] {
            let entries = read(&bytes, size).unwrap();
            assert_eq!(entries.len(), 3, "chunks of {size}");
            assert_eq!(entries[0], ("one".to_owned(), b"1".to_vec()));
            assert_eq!(entries[1], (long.clone(), big.clone()), "chunks of {size}");
            assert_eq!(entries[2], ("empty".to_owned(), Vec::new()));
        }
    }

    #[test]
    fn damaged_and_truncated_streams_are_errors_never_panics() {
        let bytes = archive(&[("one", &[7u8; 1000])]);
        let mut damaged = bytes.clone();
        damaged[3] ^= 1;
        assert!(read(&damaged, 100).unwrap_err().0.contains("checksum"));
        assert!(read(&bytes[..700], 100).unwrap_err().0.contains("middle"));
        // Every prefix and every single flipped byte of a header: an error or entries, no panic.
        for cut in 0..bytes.len() {
            let _ = read(&bytes[..cut], 64);
        }
        for at in 0..BLOCK {
            for bit in [0x01u8, 0x80] {
                let mut flipped = bytes.clone();
                flipped[at] ^= bit;
                let _ = read(&flipped, 64);
            }
        }
        let mut garbage = vec![0xffu8; 3 * BLOCK];
        garbage[148..156].copy_from_slice(b"\xff\xff\xff\xff\xff\xff\xff\xff");
        assert!(read(&garbage, 512).is_err());
    }

    #[test]
    fn written_headers_are_read_back_by_tar() {
        let mut bytes = Vec::new();
        let data = b"{\"imageLayoutVersion\":\"1.0.0\"}";
        bytes.extend_from_slice(&file_header("oci-layout", data.len() as u64).unwrap());
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len() + padding_of(data.len() as u64) as usize, 0);
        bytes.extend_from_slice(&END);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("oci-layout"));
        let mut read_back = String::new();
        std::io::Read::read_to_string(&mut entry, &mut read_back).unwrap();
        assert_eq!(read_back.as_bytes(), data);
        assert!(entries.next().is_none());
        assert_eq!(read(&bytes, 100).unwrap().len(), 1);
        let huge = file_header("x", 10 << 30).unwrap();
        assert_eq!(numeric(&huge[124..136]).unwrap(), 10 << 30);
        assert!(file_header(&"n".repeat(101), 1).is_err());
    }
}
