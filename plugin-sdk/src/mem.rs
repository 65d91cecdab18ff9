//! `memcmp` / `bcmp` for components built for `wasm32-unknown-unknown`.
//!
//! That target has no libc, so byte comparison comes from compiler-builtins, whose `memcmp`
//! compares one byte per loop iteration. Every string comparison a plugin makes — capability
//! names in a pool's map, zones, extra-spec values — goes through it, and at 1000 pools the
//! CapabilitiesFilter spent most of its time there. compiler-builtins defines these symbols
//! weak so that a faster one can replace them; this one compares 8 bytes per step while the
//! inputs agree. Other wasm targets (`wasm32-wasip1/2`) link wasi-libc's and get none of this.

/// Lexicographic comparison of `n` bytes, as C's `memcmp`.
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    allow(dead_code)
)]
unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, and the caller guarantees n readable bytes; the loads may be
        // unaligned.
        let (x, y) = unsafe {
            (
                core::ptr::read_unaligned(a.add(i) as *const u64),
                core::ptr::read_unaligned(b.add(i) as *const u64),
            )
        };
        if x != y {
            // Read as little-endian, the lowest differing bit is in the first differing byte.
            let d = i + ((u64::from_le(x) ^ u64::from_le(y)).trailing_zeros() / 8) as usize;
            // SAFETY: d < i + 8 <= n.
            return unsafe { i32::from(*a.add(d)) - i32::from(*b.add(d)) };
        }
        i += 8;
    }
    while i < n {
        // SAFETY: i < n.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C's `memcmp`, replacing compiler-builtins' weak one.
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, n) }
}

/// Zero when the `n` bytes are equal (what `==` on slices and strings compiles to).
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, n) }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    fn cmp(a: &[u8], b: &[u8]) -> Ordering {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices hold a.len() bytes.
        unsafe { super::compare(a.as_ptr(), b.as_ptr(), a.len()) }.cmp(&0)
    }

    #[test]
    fn orders_like_slice_comparison_at_every_length_and_position() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(cmp(&a, &a), Ordering::Equal, "n={n}");
            for at in 0..n {
                for delta in [1u8, 128, 255] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    assert_eq!(cmp(&a, &b), a.cmp(&b), "n={n} at={at} delta={delta}");
                    assert_eq!(cmp(&b, &a), b.cmp(&a), "n={n} at={at} delta={delta}");
                }
            }
        }
        // Unaligned starts.
        let hay = b"xxstorage_protocol-and-more-bytes-here";
        let key = b"ystorage_protocol-and-more-bytes-herf";
        assert_eq!(cmp(&hay[2..30], &key[1..29]), Ordering::Equal);
        assert_eq!(cmp(&hay[2..], &key[1..]), hay[2..].cmp(&key[1..]));
    }
}
