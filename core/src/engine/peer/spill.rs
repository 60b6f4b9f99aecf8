//! Large decoded transactions, kept in a temporary file instead of memory.
//!
//! Logical decoding hands over a transaction only once it has committed, and whole: one source
//! statement that touches ten million rows is one transaction of ten million changes. The
//! decoder keeps a transaction in memory up to a threshold of changes and of bytes (a few rows of
//! large documents weigh as much as a bulk load); past either, every change goes to an anonymous
//! temporary file (unlinked at creation, so the operating system frees it when the last handle
//! closes, even after a SIGKILL), and the transaction is read back in **pieces** of at most that
//! many changes and about that many bytes.
//!
//! Policy: a piece is what a mirror applies in one destination transaction, so memory per reader
//! and per worker is bounded by the threshold, not by what a source writer chose to do. The
//! mirror's checkpoint moves past the transaction only after its last piece; a crash in between
//! repeats the transaction from its first piece, which is harmless because destination writes
//! set each key's state (see `runner::coalesce`).
//!
//! The file format is private to this process and this transaction: changes one after the
//! other, relations as indexes into a table kept in memory, lengths as little-endian integers.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::pgoutput::{Datum, DecodeError, Relation, RowChange, SpillAfter};

/// Writes one transaction's changes to a temporary file as they are decoded.
pub(crate) struct SpillWriter {
    file: BufWriter<File>,
    /// How large a piece may grow (in changes, and in bytes of the file).
    piece: SpillAfter,
    /// Changes in the current piece.
    in_piece: usize,
    relations: Vec<Arc<Relation>>,
    /// By the relation's address (kept alive in `relations`).
    relation_index: HashMap<usize, u32>,
    tables: BTreeSet<String>,
    /// Where each piece starts in the file.
    offsets: Vec<u64>,
    written: u64,
    len: usize,
    buf: Vec<u8>,
}

/// A committed transaction's changes in a temporary file.
pub struct Spilled {
    file: File,
    relations: Vec<Arc<Relation>>,
    tables: Vec<String>,
    /// Start of each piece, then the end of the last.
    offsets: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for Spilled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spilled")
            .field("changes", &self.len)
            .field("pieces", &self.pieces())
            .field("bytes", &self.offsets.last())
            .finish()
    }
}

fn io_error(e: std::io::Error) -> DecodeError {
    DecodeError(format!("a large transaction's temporary file: {e}"))
}

impl SpillWriter {
    /// A new file whose pieces hold at most `piece.changes` changes and about `piece.bytes`
    /// bytes each (a single change larger than that is a piece of its own).
    pub(crate) fn new(piece: SpillAfter) -> Result<Self, DecodeError> {
        let file = tempfile::tempfile().map_err(io_error)?;
        Ok(SpillWriter {
            file: BufWriter::with_capacity(64 * 1024, file),
            piece,
            in_piece: 0,
            relations: Vec::new(),
            relation_index: HashMap::new(),
            tables: BTreeSet::new(),
            offsets: Vec::new(),
            written: 0,
            len: 0,
            buf: Vec::new(),
        })
    }

    pub(crate) fn push(&mut self, change: &RowChange) -> Result<(), DecodeError> {
        let piece_bytes = self.written - self.offsets.last().copied().unwrap_or(0);
        let full = (self.piece.changes > 0 && self.in_piece >= self.piece.changes)
            || (self.piece.bytes > 0 && piece_bytes >= self.piece.bytes as u64);
        if self.offsets.is_empty() || full {
            self.offsets.push(self.written);
            self.in_piece = 0;
        }
        self.buf.clear();
        match change {
            RowChange::Insert { table, new } => {
                self.buf.push(b'I');
                let rel = self.relation(table);
                self.buf.extend_from_slice(&rel.to_le_bytes());
                tuple(&mut self.buf, new);
            }
            RowChange::Update { table, old, new } => {
                self.buf.push(b'U');
                let rel = self.relation(table);
                self.buf.extend_from_slice(&rel.to_le_bytes());
                match old {
                    Some(old) => {
                        self.buf.push(1);
                        tuple(&mut self.buf, old);
                    }
                    None => self.buf.push(0),
                }
                tuple(&mut self.buf, new);
            }
            RowChange::Delete { table, old } => {
                self.buf.push(b'D');
                let rel = self.relation(table);
                self.buf.extend_from_slice(&rel.to_le_bytes());
                tuple(&mut self.buf, old);
            }
            RowChange::Truncate { tables } => {
                self.buf.push(b'T');
                self.buf.extend_from_slice(&len_u32(tables.len()).to_le_bytes());
                for t in tables {
                    self.tables.insert(t.clone());
                    bytes(&mut self.buf, t.as_bytes());
                }
            }
        }
        self.file.write_all(&self.buf).map_err(io_error)?;
        self.written += self.buf.len() as u64;
        self.len += 1;
        self.in_piece += 1;
        Ok(())
    }

    fn relation(&mut self, table: &Arc<Relation>) -> u32 {
        if let Some(i) = self.relation_index.get(&(Arc::as_ptr(table) as usize)) {
            return *i;
        }
        let i = len_u32(self.relations.len());
        self.relations.push(table.clone());
        self.relation_index.insert(Arc::as_ptr(table) as usize, i);
        self.tables.insert(table.name.clone());
        i
    }

    pub(crate) fn finish(self) -> Result<Spilled, DecodeError> {
        let file = self.file.into_inner().map_err(|e| io_error(e.into_error()))?;
        let mut offsets = self.offsets;
        offsets.push(self.written);
        Ok(Spilled {
            file,
            relations: self.relations,
            tables: self.tables.into_iter().collect(),
            offsets,
            len: self.len,
        })
    }
}

impl Spilled {
    /// How many changes the transaction has.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pieces [`Spilled::piece`] reads it in.
    pub fn pieces(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn touches(&self, tables: &[String]) -> bool {
        self.tables.iter().any(|t| tables.contains(t))
    }

    /// Reads piece `i` back (blocking file I/O: call it off the async runtime's threads).
    pub fn piece(&self, i: usize) -> Result<Vec<RowChange>, DecodeError> {
        let (Some(&start), Some(&end)) = (self.offsets.get(i), self.offsets.get(i + 1)) else {
            return Ok(Vec::new());
        };
        let size =
            usize::try_from(end - start).map_err(|_| DecodeError("a piece too large to read".into()))?;
        let mut buf = vec![0u8; size];
        self.file.read_exact_at(&mut buf, start).map_err(io_error)?;
        let mut r = Cursor { buf: &buf, pos: 0 };
        let mut out = Vec::new();
        while r.pos < buf.len() {
            out.push(r.change(&self.relations)?);
        }
        Ok(out)
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

fn tuple(buf: &mut Vec<u8>, values: &[Datum]) {
    buf.extend_from_slice(&len_u32(values.len()).to_le_bytes());
    for v in values {
        match v {
            Datum::Null => buf.push(0),
            Datum::Unchanged => buf.push(1),
            Datum::Text(t) => {
                buf.push(2);
                bytes(buf, t.as_bytes());
            }
        }
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end =
            end.ok_or_else(|| DecodeError("a large transaction's temporary file is cut short".into()))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn text(&mut self) -> Result<String, DecodeError> {
        let b = self.take(8)?;
        let n = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let n = usize::try_from(n).map_err(|_| DecodeError("a value too large to read".into()))?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| DecodeError(e.to_string()))
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(match self.u8()? {
                0 => Datum::Null,
                1 => Datum::Unchanged,
                _ => Datum::Text(self.text()?),
            });
        }
        Ok(out)
    }

    fn relation(&mut self, relations: &[Arc<Relation>]) -> Result<Arc<Relation>, DecodeError> {
        let i = self.u32()? as usize;
        relations.get(i).cloned().ok_or_else(|| DecodeError("an unknown relation in a temporary file".into()))
    }

    fn change(&mut self, relations: &[Arc<Relation>]) -> Result<RowChange, DecodeError> {
        Ok(match self.u8()? {
            b'I' => RowChange::Insert { table: self.relation(relations)?, new: self.tuple()? },
            b'U' => {
                let table = self.relation(relations)?;
                let old = if self.u8()? == 1 { Some(self.tuple()?) } else { None };
                RowChange::Update { table, old, new: self.tuple()? }
            }
            b'D' => RowChange::Delete { table: self.relation(relations)?, old: self.tuple()? },
            b'T' => {
                let n = self.u32()? as usize;
                let mut tables = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    tables.push(self.text()?);
                }
                RowChange::Truncate { tables }
            }
            other => return Err(DecodeError(format!("an unknown change kind {other} in a temporary file"))),
        })
    }
}
