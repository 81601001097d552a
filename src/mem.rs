//! Large lookup tables on transparent huge pages.
//!
//! Scoring looks up every n-gram of every review in tables of 20-30 MB (the term table, the interleaved
//! model weights) at random places. With 4 KiB pages nearly every lookup also misses the TLB, and the page
//! walk costs as much as the cache miss. [`HugeVec`] allocates such a table 2 MiB-aligned and asks Linux
//! for huge pages (`madvise(MADV_HUGEPAGE)`, which works in the kernel's default THP mode "madvise")
//! before the first write, so a few dozen TLB entries cover the whole table. Elsewhere, or when the
//! kernel says no, it is an ordinary allocation: only speed depends on it.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Size of a huge page, and the alignment of tables at least that large.
const HUGE: usize = 2 << 20;

/// A fixed-length array of `T`, on huge pages when it is at least 2 MiB.
pub struct HugeVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: HugeVec owns its elements like a Vec<T>.
unsafe impl<T: Copy + Send> Send for HugeVec<T> {}
// SAFETY: shared access only reads.
unsafe impl<T: Copy + Sync> Sync for HugeVec<T> {}

impl<T: Copy> HugeVec<T> {
    fn layout(len: usize) -> Layout {
        let size = std::mem::size_of::<T>().checked_mul(len).expect("HugeVec size overflows");
        let align = if size >= HUGE { HUGE } else { std::mem::align_of::<T>() };
        Layout::from_size_align(size, align.max(std::mem::align_of::<T>())).expect("HugeVec layout")
    }

    /// `len` copies of `value`.
    pub fn filled(value: T, len: usize) -> Self {
        Self::from_fn(len, |_| value)
    }

    /// A copy of `src`.
    pub fn from_slice(src: &[T]) -> Self {
        Self::from_fn(src.len(), |i| src[i])
    }

    /// Element `i` is `f(i)`; memory is advised to huge pages before it is first written.
    pub fn from_fn(len: usize, mut f: impl FnMut(usize) -> T) -> Self {
        let v = Self::advised(len);
        // SAFETY: `advised` allocated `len` elements; each is written once here before any is read.
        unsafe {
            for i in 0..len {
                v.ptr.as_ptr().add(i).write(f(i));
            }
        }
        v
    }

    /// `len` elements allocated and advised to huge pages, not yet written: the caller must write every
    /// element before the slice is read.
    fn advised(len: usize) -> Self {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            return HugeVec { ptr: NonNull::dangling(), len };
        }
        // SAFETY: the layout has non-zero size.
        unsafe {
            let raw = alloc(layout);
            let Some(ptr) = NonNull::new(raw as *mut T) else { handle_alloc_error(layout) };
            #[cfg(target_os = "linux")]
            if layout.size() >= HUGE {
                // A hint: failure (THP disabled) leaves ordinary pages.
                libc::madvise(raw as *mut libc::c_void, layout.size(), libc::MADV_HUGEPAGE);
            }
            HugeVec { ptr, len }
        }
    }
}

impl<T: Copy> HugeVec<MaybeUninit<T>> {
    /// `len` elements not yet written, on huge pages: for tables filled in parallel, so that each page is
    /// first touched (faulted in and zeroed by the kernel) by the thread that fills it, not by one thread
    /// writing placeholders beforehand.
    pub fn uninit(len: usize) -> Self {
        Self::advised(len)
    }

    /// The same table, every element written.
    ///
    /// # Safety
    /// Every element must have been written.
    pub unsafe fn assume_init(self) -> HugeVec<T> {
        let me = std::mem::ManuallyDrop::new(self);
        // `MaybeUninit<T>` has the size and alignment of `T`, so the layout `Drop` computes is unchanged
        HugeVec { ptr: me.ptr.cast(), len: me.len }
    }
}

/// Starts loading the cache line of `x` (a hint for random accesses whose addresses are known a few
/// steps ahead; no effect on results, nothing on targets other than x86-64).
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults; `x` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(x as *const T as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

impl<T: Copy> Drop for HugeVec<T> {
    fn drop(&mut self) {
        let layout = Self::layout(self.len);
        if layout.size() > 0 {
            // SAFETY: allocated in `from_fn` with this layout.
            unsafe { dealloc(self.ptr.as_ptr() as *mut u8, layout) }
        }
    }
}

impl<T: Copy> Deref for HugeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements at `ptr` (or a dangling pointer with len 0 / zero-sized T).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for HugeVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeVec(len {})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_tables_hold_their_values() {
        for len in [0usize, 1, 1000, 3 << 20] {
            let mut v = HugeVec::from_fn(len, |i| i as u32 * 3);
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 * 3));
            if len > 0 {
                v[len - 1] = 7;
                let c = v.clone();
                assert_eq!(c[len - 1], 7);
                assert_eq!(&c[..], &v[..]);
            }
        }
        let big = HugeVec::filled(1.5f64, 1 << 20);
        assert_eq!(big.as_ptr() as usize % HUGE, 0, "8 MiB table is 2 MiB-aligned");
        assert!(big.iter().all(|&x| x == 1.5));
    }

    #[test]
    fn uninit_tables_filled_in_parallel() {
        use rayon::prelude::*;
        for len in [0usize, 5, 3 << 20] {
            let mut v = HugeVec::<MaybeUninit<u64>>::uninit(len);
            v.par_chunks_mut(1000).enumerate().for_each(|(k, c)| {
                for (j, x) in c.iter_mut().enumerate() {
                    x.write((k * 1000 + j) as u64 * 7);
                }
            });
            // SAFETY: the chunks cover every element
            let v = unsafe { v.assume_init() };
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 7));
        }
    }
}
