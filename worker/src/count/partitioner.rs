//! Java-compatible key partitioning, so the owner of a video id is the same
//! partition here, in librdkafka's `murmur2_random` partitioner and in any
//! Java client: `toPositive(murmur2(key)) % partitions`.

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with Kafka's seed, returned
/// as Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of `key` among `partitions` (which must be positive).
pub fn partition_for(key: &[u8], partitions: u32) -> i32 {
    debug_assert!(partitions > 0, "partition count must be positive");
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions.max(1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn matches_java_murmur2() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partition_is_positive_modulo() {
        // -973932308 & 0x7fffffff = 1173551340; 1173551340 % 6 = 0
        assert_eq!(partition_for(b"21", 6), 0);
        assert_eq!(partition_for(b"abc", 6), (479_470_107 % 6));
        for n in 1..20u32 {
            let p = partition_for(b"foobar", n);
            assert!((0..n as i32).contains(&p));
        }
        assert_eq!(partition_for(b"", 1), 0);
    }
}
