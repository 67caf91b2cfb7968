//! A tiny seeded generator (SplitMix64), so that a seed gives the same data on every platform and with every dependency version.
//!
//! A general-purpose crate such as `rand` does not promise that a seed gives the same sequence
//! across its versions; the sandbox promises that it does, byte for byte.

/// Mixes the bits of `z` (the SplitMix64 finaliser): a bijection, so distinct inputs give distinct outputs.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The characters of generated ids.
const ID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for one independent stream of a seed, so that adding draws to one stream
    /// (say, the fault decisions) never changes another (the seeded data).
    pub(crate) fn stream(seed: u64, stream: u64) -> Self {
        Self {
            state: mix(seed ^ mix(stream.wrapping_add(0x5EED))),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index into a slice of `len` items (0 when it is empty).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A number in `low..=high`.
    pub(crate) fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    /// A float in `0.0..1.0`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One item of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.index(items.len());
        &items[index]
    }

    /// One item, the first ones more often than the last (as search queries and users are in practice).
    pub(crate) fn pick_skewed<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let u = self.unit();
        let index = ((u * u) * items.len() as f64) as usize;
        &items[index.min(items.len().saturating_sub(1))]
    }

    /// An id such as `conv_0k3j...`: the prefix and `len` base-36 characters.
    pub(crate) fn id(&mut self, prefix: &str, len: usize) -> String {
        let mut id = String::with_capacity(prefix.len() + 1 + len);
        id.push_str(prefix);
        id.push('_');
        for _ in 0..len {
            id.push(char::from(*self.pick(ID_ALPHABET)));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_gives_the_same_sequence_and_streams_differ() {
        let mut a = Rng::stream(42, 1);
        let mut b = Rng::stream(42, 1);
        let mut c = Rng::stream(42, 2);
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let other: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(first, second);
        assert_ne!(first, other);
    }

    #[test]
    fn draws_stay_in_bounds() {
        let mut rng = Rng::stream(7, 0);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            let r = rng.range(3, 5);
            assert!((3..=5).contains(&r));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.id("conv", 12).len(), "conv_".len() + 12);
    }
}
