//! SHA-256 and SHA-1 with hex digests (FIPS 180-4), streaming or one-shot.

const K256: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Buffering of 64-byte blocks and the final padding, shared by both hashes.
struct Blocks {
    buf: [u8; 64],
    len: usize,
    total: u64,
}

impl Blocks {
    fn new() -> Blocks {
        Blocks { buf: [0; 64], len: 0, total: 0 }
    }

    /// Feed `data`: whole blocks straight from it (``compress`` gets them several at a time,
    /// a multiple of 64 bytes), the rest through the buffer.
    fn update(&mut self, mut data: &[u8], compress: &mut dyn FnMut(&[u8])) {
        self.total += data.len() as u64;
        if self.len > 0 {
            let take = (64 - self.len).min(data.len());
            self.buf[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len < 64 {
                return;
            }
            compress(&self.buf);
            self.len = 0;
        }
        let whole = data.len() - data.len() % 64;
        if whole > 0 {
            compress(&data[..whole]);
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.len = rest.len();
    }

    /// Append 0x80, zeros and the big-endian bit length, compressing the last block(s).
    fn finish(&mut self, compress: &mut dyn FnMut(&[u8])) {
        let bits = self.total.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let used = (self.len + 1) % 64;
        let zeros = if used <= 56 { 56 - used } else { 120 - used };
        pad.extend(std::iter::repeat(0).take(zeros));
        pad.extend_from_slice(&bits.to_be_bytes());
        let total = self.total;
        self.update(&pad, compress);
        self.total = total;
    }
}

fn hex(words: &[u32]) -> String {
    words.iter().map(|w| format!("{:08x}", w)).collect()
}

/// A streaming SHA-256.
pub struct Sha256 {
    state: [u32; 8],
    blocks: Blocks,
}

impl Sha256 {
    pub fn new() -> Self {
        Sha256 {
            state: [
                0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
                0x5be0cd19,
            ],
            blocks: Blocks::new(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let state = &mut self.state;
        self.blocks.update(data, &mut |blocks| sha256_compress(state, blocks));
    }

    pub fn hex(mut self) -> String {
        let state = &mut self.state;
        self.blocks.finish(&mut |blocks| sha256_compress(state, blocks));
        hex(&self.state)
    }
}

/// The rounds over `blocks` (a multiple of 64 bytes), with the SHA extensions where the CPU has them.
fn sha256_compress(state: &mut [u32; 8], blocks: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_sha_ni() {
            // SAFETY: the CPU has the SHA extensions (checked at run time)
            unsafe { x86::compress(state, blocks) };
            return;
        }
    }
    for block in blocks.chunks_exact(64) {
        sha256_compress_portable(state, block.try_into().expect("64 bytes"));
    }
}

/// Whether this x86-64 CPU has the SHA extensions (Intel SHA-NI), asked once.
#[cfg(target_arch = "x86_64")]
fn has_sha_ni() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 no, 2 yes
    match KNOWN.load(Ordering::Relaxed) {
        0 => {
            let yes = is_x86_feature_detected!("sha") && is_x86_feature_detected!("sse4.1")
                && is_x86_feature_detected!("ssse3");
            KNOWN.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        known => known == 2,
    }
}

/// SHA-256 rounds with the SHA extensions: ~8x the portable code, which matters for the
/// runner's check of its own 1 MB on every install.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(v0, v1);
        let t2 = _mm_alignr_epi8(v3, v2, 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), v3)
    }

    /// Four rounds: message words `w` (big-endian lanes) plus the round constants `4i..4i+4`.
    macro_rules! rounds4 {
        ($abef:ident, $cdgh:ident, $w:expr, $i:expr) => {{
            let k = _mm_loadu_si128(super::K256.as_ptr().add(4 * $i) as *const __m128i);
            let t1 = _mm_add_epi32($w, k);
            $cdgh = _mm_sha256rnds2_epu32($cdgh, $abef, t1);
            $abef = _mm_sha256rnds2_epu32($abef, $cdgh, _mm_shuffle_epi32(t1, 0x0E));
        }};
    }

    /// The rounds over `blocks` (a multiple of 64 bytes), the state kept in registers from one
    /// block to the next and the message words in four variables (no array to index): the
    /// runner's check of its own 1.1 MB on every install went from ~1.1 to ~0.5 ms of CPU
    /// (`selfcheck`, perf stat, medians of 100) against a call per 64-byte block.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress(state: &mut [u32; 8], blocks: &[u8]) {
        let mask = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        let dcba = _mm_loadu_si128(state.as_ptr() as *const __m128i);
        let efgh = _mm_loadu_si128(state.as_ptr().add(4) as *const __m128i);
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        let mut abef = _mm_alignr_epi8(cdab, efgh, 8);
        let mut cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
        for block in blocks.chunks_exact(64) {
            let (abef_save, cdgh_save) = (abef, cdgh);
            let data = block.as_ptr() as *const __m128i;
            let mut w0 = _mm_shuffle_epi8(_mm_loadu_si128(data), mask);
            let mut w1 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(1)), mask);
            let mut w2 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(2)), mask);
            let mut w3 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(3)), mask);
            rounds4!(abef, cdgh, w0, 0);
            rounds4!(abef, cdgh, w1, 1);
            rounds4!(abef, cdgh, w2, 2);
            rounds4!(abef, cdgh, w3, 3);
            for i in 1..4 {
                w0 = schedule(w0, w1, w2, w3);
                rounds4!(abef, cdgh, w0, 4 * i);
                w1 = schedule(w1, w2, w3, w0);
                rounds4!(abef, cdgh, w1, 4 * i + 1);
                w2 = schedule(w2, w3, w0, w1);
                rounds4!(abef, cdgh, w2, 4 * i + 2);
                w3 = schedule(w3, w0, w1, w2);
                rounds4!(abef, cdgh, w3, 4 * i + 3);
            }
            abef = _mm_add_epi32(abef, abef_save);
            cdgh = _mm_add_epi32(cdgh, cdgh_save);
        }
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        _mm_storeu_si128(state.as_mut_ptr() as *mut __m128i, dcba);
        _mm_storeu_si128(state.as_mut_ptr().add(4) as *mut __m128i, hgef);
    }
}

fn sha256_compress_portable(state: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 64];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K256[i]).wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (slot, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *slot = slot.wrapping_add(v);
    }
}

/// The SHA-256 of `data` as 64 lowercase hex digits.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.hex()
}

/// A streaming SHA-1.
pub struct Sha1 {
    state: [u32; 5],
    blocks: Blocks,
}

impl Sha1 {
    pub fn new() -> Self {
        Sha1 {
            state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0],
            blocks: Blocks::new(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let state = &mut self.state;
        self.blocks.update(data, &mut |blocks| sha1_blocks(state, blocks));
    }

    pub fn hex(mut self) -> String {
        let state = &mut self.state;
        self.blocks.finish(&mut |blocks| sha1_blocks(state, blocks));
        hex(&self.state)
    }

    /// The 20-byte digest.
    pub fn digest(mut self) -> Vec<u8> {
        let state = &mut self.state;
        self.blocks.finish(&mut |blocks| sha1_blocks(state, blocks));
        self.state.iter().flat_map(|w| w.to_be_bytes()).collect()
    }
}

/// HMAC-SHA1 (RFC 2104) of `data` under `key`, as Python's `hmac.new(key, data, sha1)`.
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        let mut h = Sha1::new();
        h.update(key);
        block[..20].copy_from_slice(&h.digest());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(&block.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(data);
    let mut outer = Sha1::new();
    outer.update(&block.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(&inner.digest());
    outer.digest()
}

fn sha1_blocks(state: &mut [u32; 5], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        sha1_compress(state, block.try_into().expect("64 bytes"));
    }
}

fn sha1_compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5a827999),
            20..=39 => (b ^ c ^ d, 0x6ed9eba1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1bbcdc),
            _ => (b ^ c ^ d, 0xca62c1d6),
        };
        let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (slot, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *slot = slot.wrapping_add(v);
    }
}

/// The SHA-1 of `data` as 40 lowercase hex digits.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(data);
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_rfc2202_vectors() {
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{:02x}", x)).collect::<String>();
        assert_eq!(hex(hmac_sha1(&[0x0b; 20], b"Hi There")), "b617318655057264e28bc0b6fb378c8ef146be00");
        assert_eq!(hex(hmac_sha1(b"Jefe", b"what do ya want for nothing?")), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert_eq!(hex(hmac_sha1(&[0xaa; 80], b"Test Using Larger Than Block-Size Key - Hash Key First")),
                   "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    }

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn sha_ni_and_portable_rounds_agree() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut block = [0u8; 64];
            for b in block.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            let mut a = [seed as u32, 2, 3, 4, 5, 6, 7, (seed >> 32) as u32];
            let mut b = a;
            sha256_compress(&mut a, &block);
            sha256_compress_portable(&mut b, &block);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn streaming_matches_one_shot_at_every_split() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        for split in [0, 1, 55, 56, 63, 64, 65, 119, 128, 200] {
            let mut a = Sha256::new();
            a.update(&data[..split]);
            a.update(&data[split..]);
            assert_eq!(a.hex(), sha256_hex(&data));
            let mut b = Sha1::new();
            b.update(&data[..split]);
            b.update(&data[split..]);
            assert_eq!(b.hex(), sha1_hex(&data));
        }
    }

    #[test]
    fn matches_sha256sum_and_sha1sum() {
        let dir = std::env::temp_dir().join(format!("rr-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for (tool, ours) in [("sha256sum", sha256_hex(&data)), ("sha1sum", sha1_hex(&data))] {
            if let Ok(out) = std::process::Command::new(tool).arg(&path).output() {
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                assert_eq!(text.split_whitespace().next(), Some(ours.as_str()), "{}", tool);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
