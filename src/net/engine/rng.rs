//! The engine's random numbers: a small seeded generator (xoshiro256++, seeded through
//! SplitMix64), so that one seed always gives the same losses, delays and duplicates — in
//! the model's tests, and for a user who sets `seed=` on an impairment.
//!
//! Hand-written (20 lines) rather than `rand`'s `StdRng`, whose algorithm may change
//! between releases: a seed must mean the same sequence in every kiln version.
//!
//! Pure: no I/O, no clock.

/// xoshiro256++ (Blackman and Vigna), 32-bit outputs from the high half.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence follows from `seed`.
    pub fn seeded(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            // SplitMix64: spreads any seed (0 included) over the whole state.
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// A generator seeded from the kernel's entropy (`getrandom`), for impairments
    /// without a seed.
    pub fn from_entropy() -> Rng {
        let mut bytes = [0u8; 8];
        // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer we own.
        let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        let seed = if got == 8 {
            u64::from_ne_bytes(bytes)
        } else {
            // No entropy source: the clock still differs between runs.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id())
        };
        Rng::seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform `u32` (netem's `prandom_u32_state`).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform integer below `bound` (> 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(bound)) >> 32) as u32
    }
}
