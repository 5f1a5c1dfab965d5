//! The buffer a packed matrix lives in ([`Tiles`]): zeroed, 64-byte aligned, and for 2 MiB and
//! more 2 MiB-aligned and advised onto transparent huge pages.

/// The zeroed buffer of a matrix's packed tiles. Buffers of 2 MiB and more are 2 MiB-aligned and,
/// on Linux, advised onto transparent huge pages before anything touches them (honoured in the
/// common `madvise` THP mode): a decode step streams every weight once, and with 4 KiB pages
/// the TLB misses cost about as much as the arithmetic on F16 matrices (llama.cpp reads the file
/// through the page cache, which the kernel may map with large folios).
pub struct Tiles {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Tiles` owns its bytes like a `Vec<u8>`.
unsafe impl Send for Tiles {}
unsafe impl Sync for Tiles {}

const HUGE: usize = 2 << 20;

impl Tiles {
    pub(super) fn zeroed(len: usize) -> Tiles {
        let align = if len >= HUGE { HUGE } else { 64 };
        let layout = std::alloc::Layout::from_size_align(len.max(1), align)
            .expect("a matrix buffer size fits a layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if len >= HUGE {
            // SAFETY: the range lies inside the allocation; the call only advises the kernel.
            unsafe {
                libc::madvise(
                    raw as *mut libc::c_void,
                    len / HUGE * HUGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
        // SAFETY: `len` bytes were allocated (and are zeroed here before any read).
        unsafe { std::ptr::write_bytes(raw, 0, len) };
        Tiles { ptr, len, layout }
    }
}

impl std::ops::Deref for Tiles {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialized bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Tiles {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}
