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
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, and the caller guarantees n readable bytes; wasm loads may be
        // unaligned.
        let (x, y) = unsafe {
            (
                core::ptr::read_unaligned(a.add(i) as *const u64),
                core::ptr::read_unaligned(b.add(i) as *const u64),
            )
        };
        if x != y {
            // Little-endian: the lowest differing bit is in the first differing byte.
            let d = i + ((x ^ y).trailing_zeros() / 8) as usize;
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

/// Zero when the `n` bytes are equal (what `==` on slices and strings compiles to).
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}
