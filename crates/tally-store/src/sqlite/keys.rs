//! The idempotency key index: which key fingerprints exist, and in which generation.
//!
//! Keys are stored by (generation, fingerprint), where a generation holds the keys of 65,536
//! consecutive events, so inserts touch only the newest, small part of the index. To find an existing
//! key without probing every generation, the writer keeps a blocked Bloom filter per epoch (64
//! generations, about 4 million keys, 8 MiB). A key no filter may contain is new without any disk
//! read; otherwise only the generations of the epochs whose filter matches are probed, newest first.
//! The filters are rebuilt from the table when the store opens and are only ever a shortcut: the table
//! is the truth, and a filter that says "maybe" costs a probe, never a wrong answer.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::StoreResult;

/// Events per generation, as a power of two.
pub(super) const GENERATION_BITS: u32 = 16;
/// Generations per epoch (one filter each).
const EPOCH_GENERATIONS: i64 = 64;
/// Filter size per epoch, in 64-byte blocks: 2^17 blocks = 8 MiB = 16 bits per key at 4M keys.
const BLOCKS: usize = 1 << 17;
/// Bits set per key, all within one 512-bit block.
const HASHES: u32 = 8;

/// Returns the generation of an event id.
pub(super) fn generation_of(event_id: i64) -> i64 {
    event_id >> GENERATION_BITS
}

/// A blocked Bloom filter over key fingerprints.
struct Filter {
    blocks: Vec<[u64; 8]>,
}

impl Filter {
    fn new() -> Self {
        Filter {
            blocks: vec![[0u64; 8]; BLOCKS],
        }
    }

    /// The block and the bit positions of a fingerprint (already a good hash: xxh3).
    fn positions(key: i64) -> (usize, [u32; HASHES as usize]) {
        let key = key as u64;
        // Mix once more so the block index and bit positions use independent bits.
        let mut x = key ^ (key >> 33);
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let block = (key as usize) & (BLOCKS - 1);
        // Double hashing inside the block: h1 + i·h2 (h2 odd, so all positions differ mod 512).
        let h1 = (x & 511) as u32;
        let h2 = ((x >> 9) & 511) as u32 | 1;
        let mut bits = [0u32; HASHES as usize];
        for (i, bit) in bits.iter_mut().enumerate() {
            *bit = (h1 + i as u32 * h2) & 511;
        }
        (block, bits)
    }

    fn insert(&mut self, key: i64) {
        let (block, bits) = Self::positions(key);
        let words = &mut self.blocks[block];
        for bit in bits {
            words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: i64) -> bool {
        let (block, bits) = Self::positions(key);
        let words = &self.blocks[block];
        bits.iter()
            .all(|bit| words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

/// The writer's view of every stored key.
pub(crate) struct KeyIndex {
    /// One filter per epoch, indexed by epoch number; created when the epoch gets its first key.
    epochs: Vec<Option<Filter>>,
}

impl KeyIndex {
    /// Loads every stored key into fresh filters.
    pub(crate) fn load(conn: &Connection) -> StoreResult<KeyIndex> {
        let mut index = KeyIndex { epochs: Vec::new() };
        let mut stmt = conn.prepare("SELECT generation, key_hash FROM event_keys")?;
        let mut rows = stmt.query([])?;
        let mut count = 0u64;
        while let Some(row) = rows.next()? {
            index.insert(row.get(1)?, row.get(0)?);
            count += 1;
        }
        tracing::info!(
            keys = count,
            epochs = index.epochs.len(),
            "idempotency key filters loaded"
        );
        Ok(index)
    }

    /// Remembers a key stored in `generation`.
    pub(crate) fn insert(&mut self, key: i64, generation: i64) {
        let epoch = usize::try_from(generation / EPOCH_GENERATIONS).unwrap_or(0);
        if self.epochs.len() <= epoch {
            self.epochs.resize_with(epoch + 1, || None);
        }
        self.epochs[epoch]
            .get_or_insert_with(Filter::new)
            .insert(key);
    }

    /// Finds a stored key: returns its (payload fingerprint, event id), probing only the generations
    /// whose epoch filter may hold it, newest first.
    pub(crate) fn find(&self, conn: &Connection, key: i64) -> StoreResult<Option<(i64, i64)>> {
        let mut probe = conn.prepare_cached(
            "SELECT payload_hash, event_id FROM event_keys WHERE generation = ?1 AND key_hash = ?2",
        )?;
        for (epoch, filter) in self.epochs.iter().enumerate().rev() {
            if !filter.as_ref().is_some_and(|f| f.may_contain(key)) {
                continue;
            }
            let first = epoch as i64 * EPOCH_GENERATIONS;
            for generation in (first..first + EPOCH_GENERATIONS).rev() {
                let found = probe
                    .query_row(params![generation, key], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }
}

/// Finds a stored key without filters (for readers): probes every generation, newest first.
pub(super) fn find_unfiltered(conn: &Connection, key: i64) -> StoreResult<Option<i64>> {
    let newest: Option<i64> =
        conn.query_row("SELECT MAX(generation) FROM event_keys", [], |row| {
            row.get(0)
        })?;
    let mut probe = conn.prepare_cached(
        "SELECT event_id FROM event_keys WHERE generation = ?1 AND key_hash = ?2",
    )?;
    for generation in (0..=newest.unwrap_or(-1)).rev() {
        let found = probe
            .query_row(params![generation, key], |row| row.get(0))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_never_forget_and_rarely_lie() {
        let mut filter = Filter::new();
        let keys: Vec<i64> = (0..100_000i64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as i64))
            .collect();
        for &k in &keys {
            filter.insert(k);
        }
        assert!(keys.iter().all(|&k| filter.may_contain(k)));
        let false_positives = (0..100_000i64)
            .map(|i| (i + 1_000_000).wrapping_mul(0x2545_f491_4f6c_dd1d))
            .filter(|&k| filter.may_contain(k))
            .count();
        // 100k keys in an 8 MiB filter: false positives should be essentially absent.
        assert!(false_positives < 10, "{false_positives} false positives");
    }
}
