//! Decoding `pgoutput` messages (protocol version 1), the logical decoding output plugin that
//! ships with Postgres, as a replication stream carries them (see `super::stream`).
//!
//! Policy: only what replication needs is kept — relations (to map an oid to a table and its
//! column names), row changes with their values in Postgres's text form, and transaction
//! boundaries with the commit's end position. Values stay text: the destination casts them back
//! to the column's type, so every type Postgres can print round-trips value for value.

use std::collections::HashMap;
use std::sync::Arc;

use super::spill::{SpillWriter, Spilled};

/// A column value inside a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value the change did not touch: pgoutput does not send it.
    Unchanged,
    Text(String),
}

/// One row change of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    Insert {
        table: Arc<Relation>,
        new: Vec<Datum>,
    },
    /// `old` is the old key (or whole row) when the key changed or the table's replica identity
    /// is full; otherwise the key did not change.
    Update {
        table: Arc<Relation>,
        old: Option<Vec<Datum>>,
        new: Vec<Datum>,
    },
    /// `old` holds the key columns (others are NULL), or the whole row under replica identity full.
    Delete {
        table: Arc<Relation>,
        old: Vec<Datum>,
    },
    Truncate {
        tables: Vec<String>,
    },
}

/// A committed transaction: its changes, and the end of its commit record (the position a
/// checkpoint records once it is applied).
#[derive(Debug)]
pub struct Transaction {
    pub end_lsn: u64,
    pub changes: Changes,
    /// About how much memory its changes hold (0 when spilled; see [`RowChange::size`]).
    bytes: usize,
}

/// When a transaction being decoded moves to a temporary file, and the size of the pieces it is
/// read back in: past `changes` changes or `bytes` bytes of values, whichever comes first (0
/// turns that bound off). Both matter: a bulk load is many small rows, a document store few
/// large ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpillAfter {
    pub changes: usize,
    pub bytes: usize,
}

impl SpillAfter {
    /// Every transaction stays in memory, whatever its size.
    pub const NEVER: SpillAfter = SpillAfter { changes: 0, bytes: 0 };

    /// Whether a transaction of `changes` changes holding `bytes` is past either bound.
    pub fn exceeded(&self, changes: usize, bytes: usize) -> bool {
        (self.changes > 0 && changes > self.changes) || (self.bytes > 0 && bytes > self.bytes)
    }
}

impl RowChange {
    /// About how many bytes of memory it holds: its values plus a fixed cost per value and per
    /// change. An estimate for memory bounds, not an exact figure.
    pub fn size(&self) -> usize {
        fn tuple(values: &[Datum]) -> usize {
            values
                .iter()
                .map(|d| std::mem::size_of::<Datum>() + if let Datum::Text(t) = d { t.len() } else { 0 })
                .sum()
        }
        std::mem::size_of::<RowChange>()
            + match self {
                RowChange::Insert { new, .. } => tuple(new),
                RowChange::Update { old, new, .. } => old.as_deref().map_or(0, tuple) + tuple(new),
                RowChange::Delete { old, .. } => tuple(old),
                RowChange::Truncate { tables } => tables.iter().map(|t| t.len() + 24).sum(),
            }
    }
}

/// Where a transaction's changes are: small ones in memory, large ones in a temporary file
/// (see [`super::spill`]).
#[derive(Debug)]
pub enum Changes {
    Memory(Vec<RowChange>),
    Spilled(Spilled),
}

impl Transaction {
    /// Whether any change of this transaction is to one of `tables`.
    pub fn touches(&self, tables: &[String]) -> bool {
        match &self.changes {
            Changes::Memory(changes) => changes.iter().any(|c| match c {
                RowChange::Insert { table, .. }
                | RowChange::Update { table, .. }
                | RowChange::Delete { table, .. } => tables.contains(&table.name),
                RowChange::Truncate { tables: truncated } => truncated.iter().any(|t| tables.contains(t)),
            }),
            Changes::Spilled(s) => s.touches(tables),
        }
    }

    /// How many changes it has.
    pub fn len(&self) -> usize {
        match &self.changes {
            Changes::Memory(changes) => changes.len(),
            Changes::Spilled(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of its changes are held in memory.
    pub fn in_memory(&self) -> usize {
        match &self.changes {
            Changes::Memory(changes) => changes.len(),
            Changes::Spilled(_) => 0,
        }
    }

    /// About how many bytes of memory its changes hold (0 when spilled).
    pub fn in_memory_bytes(&self) -> usize {
        self.bytes
    }

    /// A transaction of `changes` held in memory (for tests of what holds transactions).
    #[cfg(test)]
    pub(crate) fn in_memory_from(end_lsn: u64, changes: Vec<RowChange>) -> Transaction {
        let bytes = changes.iter().map(RowChange::size).sum();
        Transaction { end_lsn, changes: Changes::Memory(changes), bytes }
    }

    /// Its changes when they are in memory; `None` when spilled (read those a piece at a time).
    pub fn memory(&self) -> Option<&[RowChange]> {
        match &self.changes {
            Changes::Memory(changes) => Some(changes),
            Changes::Spilled(_) => None,
        }
    }
}

/// A table as pgoutput describes it: name and column names in the order values are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub columns: Vec<String>,
}

/// Decodes a stream of messages into committed transactions. Relations are remembered across
/// calls (a decoding session sends each once before its first use).
#[derive(Default)]
pub struct Decoder {
    relations: HashMap<u32, Arc<Relation>>,
    open: Option<Open>,
    /// When a transaction goes to a temporary file.
    spill_after: SpillAfter,
}

impl Default for SpillAfter {
    fn default() -> Self {
        SpillAfter::NEVER
    }
}

/// The transaction being decoded.
struct Open {
    changes: Vec<RowChange>,
    /// The [`RowChange::size`] of `changes`.
    bytes: usize,
    spill: Option<SpillWriter>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode a pgoutput message: {0}")]
pub struct DecodeError(pub(crate) String);

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(DecodeError(format!("message ends early at byte {}", self.pos)));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == 0) else {
            return Err(DecodeError("unterminated string".into()));
        };
        let s =
            String::from_utf8(rest[..n].to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))?;
        self.pos += n + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.i16()?;
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len =
                        usize::try_from(self.i32()?).map_err(|_| DecodeError("negative length".into()))?;
                    let bytes = self.take(len)?;
                    Datum::Text(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| DecodeError("value is not UTF-8".into()))?,
                    )
                }
                other => return Err(DecodeError(format!("unknown tuple kind {other}"))),
            });
        }
        Ok(out)
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that moves a transaction to a temporary file once it is past `after`, and
    /// reads it back in pieces no larger than that.
    pub fn spilling_after(after: SpillAfter) -> Self {
        Decoder { spill_after: after, ..Self::default() }
    }

    /// The relation pgoutput described for `oid`.
    pub fn relation(&self, oid: u32) -> Option<&Arc<Relation>> {
        self.relations.get(&oid)
    }

    fn table(&self, oid: u32) -> Result<Arc<Relation>, DecodeError> {
        self.relations
            .get(&oid)
            .cloned()
            .ok_or_else(|| DecodeError(format!("a change for relation {oid} came before its description")))
    }

    fn push(&mut self, change: RowChange) -> Result<(), DecodeError> {
        let Some(open) = &mut self.open else {
            return Err(DecodeError("a change outside a transaction".into()));
        };
        if let Some(spill) = &mut open.spill {
            return spill.push(&change);
        }
        open.bytes += change.size();
        open.changes.push(change);
        if self.spill_after.exceeded(open.changes.len(), open.bytes) {
            let mut spill = SpillWriter::new(self.spill_after)?;
            for c in open.changes.drain(..) {
                spill.push(&c)?;
            }
            open.changes = Vec::new();
            open.bytes = 0;
            open.spill = Some(spill);
        }
        Ok(())
    }

    /// Whether a transaction has begun and not yet committed.
    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// A transaction starts (a `Begin` message; the replication stream hands these over parsed).
    pub fn begin(&mut self) {
        self.open = Some(Open { changes: Vec::new(), bytes: 0, spill: None });
    }

    /// The open transaction committed with its commit record ending at `end_lsn`.
    pub fn commit(&mut self, end_lsn: u64) -> Result<Transaction, DecodeError> {
        let open = self.open.take().ok_or_else(|| DecodeError("a commit without a begin".into()))?;
        let (changes, bytes) = match open.spill {
            Some(spill) => (Changes::Spilled(spill.finish()?), 0),
            None => (Changes::Memory(open.changes), open.bytes),
        };
        Ok(Transaction { end_lsn, changes, bytes })
    }

    /// Feeds one message; returns the transaction it completes, if it is a commit.
    pub fn feed(&mut self, msg: &[u8]) -> Result<Option<Transaction>, DecodeError> {
        let mut r = Reader { buf: msg, pos: 0 };
        match r.u8()? {
            b'B' => self.begin(),
            b'C' => {
                let _flags = r.u8()?;
                let _commit_lsn = r.u64()?;
                let end_lsn = r.u64()?;
                return self.commit(end_lsn).map(Some);
            }
            b'R' => {
                let oid = r.u32()?;
                let _namespace = r.cstr()?;
                let name = r.cstr()?;
                let _identity = r.u8()?;
                let n = r.i16()?;
                let mut columns = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                for _ in 0..n {
                    let _flags = r.u8()?;
                    columns.push(r.cstr()?);
                    let _type_oid = r.u32()?;
                    let _typmod = r.i32()?;
                }
                self.relations.insert(oid, Arc::new(Relation { name, columns }));
            }
            b'I' => {
                let table = self.table(r.u32()?)?;
                if r.u8()? != b'N' {
                    return Err(DecodeError("an insert without a new row".into()));
                }
                let new = r.tuple()?;
                self.push(RowChange::Insert { table, new })?;
            }
            b'U' => {
                let table = self.table(r.u32()?)?;
                let mut old = None;
                let mut kind = r.u8()?;
                if kind == b'K' || kind == b'O' {
                    old = Some(r.tuple()?);
                    kind = r.u8()?;
                }
                if kind != b'N' {
                    return Err(DecodeError("an update without a new row".into()));
                }
                let new = r.tuple()?;
                self.push(RowChange::Update { table, old, new })?;
            }
            b'D' => {
                let table = self.table(r.u32()?)?;
                let kind = r.u8()?;
                if kind != b'K' && kind != b'O' {
                    return Err(DecodeError("a delete without its key".into()));
                }
                let old = r.tuple()?;
                self.push(RowChange::Delete { table, old })?;
            }
            b'T' => {
                let n = r.u32()?;
                let _options = r.u8()?;
                let mut tables = Vec::new();
                for _ in 0..n {
                    tables.push(self.table(r.u32()?)?.name.clone());
                }
                self.push(RowChange::Truncate { tables })?;
            }
            // Origin, type descriptions and logical messages carry nothing a mirror applies.
            b'O' | b'Y' | b'M' => {}
            other => return Err(DecodeError(format!("unknown message type {:?}", other as char))),
        }
        Ok(None)
    }
}

/// Formats a log position the way Postgres prints one (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Reads a log position printed by Postgres.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn relation(oid: u32, name: &str, cols: &[&str]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&oid.to_be_bytes());
        cstr(&mut m, "public");
        cstr(&mut m, name);
        m.push(b'd');
        m.extend_from_slice(&(cols.len() as i16).to_be_bytes());
        for c in cols {
            m.push(0);
            cstr(&mut m, c);
            m.extend_from_slice(&25u32.to_be_bytes());
            m.extend_from_slice(&(-1i32).to_be_bytes());
        }
        m
    }

    fn tuple(out: &mut Vec<u8>, values: &[Option<&str>]) {
        out.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(t) => {
                    out.push(b't');
                    out.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    out.extend_from_slice(t.as_bytes());
                }
            }
        }
    }

    #[test]
    fn a_transaction_decodes_into_its_changes() {
        let mut d = Decoder::new();
        let mut begin = vec![b'B'];
        begin.extend_from_slice(&[0; 20]);
        assert!(d.feed(&relation(7, "t", &["id", "v"])).unwrap().is_none());
        assert!(d.feed(&begin).unwrap().is_none());
        let mut ins = vec![b'I'];
        ins.extend_from_slice(&7u32.to_be_bytes());
        ins.push(b'N');
        tuple(&mut ins, &[Some("1"), None]);
        d.feed(&ins).unwrap();
        let mut del = vec![b'D'];
        del.extend_from_slice(&7u32.to_be_bytes());
        del.push(b'K');
        tuple(&mut del, &[Some("2"), None]);
        d.feed(&del).unwrap();
        let mut commit = vec![b'C', 0];
        commit.extend_from_slice(&10u64.to_be_bytes());
        commit.extend_from_slice(&42u64.to_be_bytes());
        commit.extend_from_slice(&0i64.to_be_bytes());
        let tx = d.feed(&commit).unwrap().expect("a commit completes the transaction");
        assert_eq!(tx.end_lsn, 42);
        let t = Arc::new(Relation { name: "t".into(), columns: vec!["id".into(), "v".into()] });
        assert_eq!(
            tx.memory().expect("a small transaction stays in memory"),
            &[
                RowChange::Insert { table: t.clone(), new: vec![Datum::Text("1".into()), Datum::Null] },
                RowChange::Delete { table: t, old: vec![Datum::Text("2".into()), Datum::Null] },
            ]
        );
    }

    /// Messages of one transaction with every kind of change and value, over two relations,
    /// one of which is described in the middle of the transaction (as pgoutput does on first use).
    fn mixed_transaction() -> Vec<Vec<u8>> {
        let mut out = vec![relation(7, "t", &["id", "v"])];
        let mut begin = vec![b'B'];
        begin.extend_from_slice(&[0; 20]);
        out.push(begin);
        for i in 0..7 {
            let mut ins = vec![b'I'];
            ins.extend_from_slice(&7u32.to_be_bytes());
            ins.push(b'N');
            tuple(&mut ins, &[Some(&i.to_string()), Some("ünïcødé, 'quoted'")]);
            out.push(ins);
        }
        out.push(relation(9, "other", &["k"]));
        let mut upd = vec![b'U'];
        upd.extend_from_slice(&7u32.to_be_bytes());
        upd.push(b'K');
        tuple(&mut upd, &[Some("1"), None]);
        upd.push(b'N');
        tuple(&mut upd, &[Some("100"), None]);
        out.push(upd);
        let mut unchanged = vec![b'U'];
        unchanged.extend_from_slice(&7u32.to_be_bytes());
        unchanged.push(b'N');
        unchanged.extend_from_slice(&2i16.to_be_bytes());
        unchanged.extend_from_slice(&[b't', 0, 0, 0, 1, b'2', b'u']);
        out.push(unchanged);
        let mut del = vec![b'D'];
        del.extend_from_slice(&9u32.to_be_bytes());
        del.push(b'K');
        tuple(&mut del, &[Some("")]);
        out.push(del);
        let mut trunc = vec![b'T'];
        trunc.extend_from_slice(&2u32.to_be_bytes());
        trunc.push(0);
        trunc.extend_from_slice(&7u32.to_be_bytes());
        trunc.extend_from_slice(&9u32.to_be_bytes());
        out.push(trunc);
        let mut commit = vec![b'C', 0];
        commit.extend_from_slice(&10u64.to_be_bytes());
        commit.extend_from_slice(&42u64.to_be_bytes());
        commit.extend_from_slice(&0i64.to_be_bytes());
        out.push(commit);
        out
    }

    fn decode(mut d: Decoder, messages: &[Vec<u8>]) -> Transaction {
        let mut done = None;
        for m in messages {
            if let Some(tx) = d.feed(m).unwrap() {
                done = Some(tx);
            }
        }
        done.expect("the commit completes the transaction")
    }

    #[test]
    fn a_transaction_past_the_spill_threshold_reads_back_in_pieces_equal_to_the_changes() {
        let messages = mixed_transaction();
        let whole = decode(Decoder::new(), &messages);
        let changes = whole.memory().expect("without a threshold it stays in memory").to_vec();
        assert_eq!(changes.len(), 11);
        let spilled = decode(Decoder::spilling_after(SpillAfter { changes: 3, bytes: 0 }), &messages);
        assert_eq!((spilled.end_lsn, spilled.len(), spilled.in_memory()), (42, 11, 0));
        let Changes::Spilled(file) = &spilled.changes else {
            panic!("11 changes past a threshold of 3 spill")
        };
        assert_eq!(file.pieces(), 4);
        let mut back = Vec::new();
        for i in 0..file.pieces() {
            let piece = file.piece(i).unwrap();
            assert!(piece.len() <= 3, "piece {i} holds {} changes", piece.len());
            back.extend(piece);
        }
        assert_eq!(back, changes);
        for tables in [&["t".to_string()][..], &["other".to_string()], &["absent".to_string()]] {
            assert_eq!(spilled.touches(tables), whole.touches(tables), "{tables:?}");
        }
        // At the threshold exactly, it stays in memory.
        let at = decode(Decoder::spilling_after(SpillAfter { changes: 11, bytes: 0 }), &messages);
        assert_eq!(at.in_memory(), 11);
    }

    /// A transaction of few changes with large values: the change bound alone would keep it in
    /// memory whole; the byte bound moves it to a file read back in pieces of about that size.
    #[test]
    fn a_transaction_of_few_large_values_spills_by_size_and_reads_back_in_pieces_of_that_size() {
        let big = "x".repeat(100_000);
        let mut messages = vec![relation(7, "t", &["id", "v"])];
        let mut begin = vec![b'B'];
        begin.extend_from_slice(&[0; 20]);
        messages.push(begin);
        for i in 0..10 {
            let mut ins = vec![b'I'];
            ins.extend_from_slice(&7u32.to_be_bytes());
            ins.push(b'N');
            tuple(&mut ins, &[Some(&i.to_string()), Some(&big)]);
            messages.push(ins);
        }
        let mut commit = vec![b'C', 0];
        commit.extend_from_slice(&10u64.to_be_bytes());
        commit.extend_from_slice(&42u64.to_be_bytes());
        commit.extend_from_slice(&0i64.to_be_bytes());
        messages.push(commit);

        let whole = decode(Decoder::spilling_after(SpillAfter { changes: 1_000, bytes: 0 }), &messages);
        assert_eq!(whole.in_memory(), 10);
        assert!(whole.in_memory_bytes() >= 1_000_000, "{} bytes", whole.in_memory_bytes());
        let changes = whole.memory().unwrap().to_vec();

        let limit = SpillAfter { changes: 1_000, bytes: 250_000 };
        let spilled = decode(Decoder::spilling_after(limit), &messages);
        assert_eq!((spilled.len(), spilled.in_memory(), spilled.in_memory_bytes()), (10, 0, 0));
        let Changes::Spilled(file) = &spilled.changes else { panic!("1 MB past 250 kB spills") };
        let mut back = Vec::new();
        for i in 0..file.pieces() {
            let piece = file.piece(i).unwrap();
            let size: usize = piece.iter().map(RowChange::size).sum();
            // A piece closes at the first change that takes it to the bound or past it.
            assert!(size < 250_000 + 101_000, "piece {i} holds {size} bytes");
            back.extend(piece);
        }
        assert_eq!(file.pieces(), 4, "10 values of 100 kB in pieces of about 250 kB");
        assert_eq!(back, changes);
    }

    #[test]
    fn truncated_or_unknown_messages_are_errors_not_panics() {
        let mut d = Decoder::new();
        for bad in [&b""[..], b"C", b"R\0\0", b"Z", b"I\0\0\0\x07N"] {
            assert!(d.feed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn log_positions_print_and_parse_like_postgres() {
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("nope"), None);
    }
}
