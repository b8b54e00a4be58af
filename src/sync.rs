//! The one place atomics come from: `loom`'s under `cfg(loom)`, `portable-atomic`'s otherwise.
//!
//! `portable-atomic` gives a 64-bit atomic on every target: native where the CPU has one, a
//! seqlock or critical section where it does not (see the README on interrupt handlers).
//! loom's atomics are not `const`, so under `cfg(loom)` constructors are ordinary functions and
//! `static` breakers are compiled out, as in tokio.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Declares a function that is `const fn` normally and a plain `fn` under `cfg(loom)`.
macro_rules! loom_const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])*
        $vis const fn $name $($rest)*
        #[cfg(loom)]
        $(#[$m])*
        $vis fn $name $($rest)*
    };
}
pub(crate) use loom_const_fn;
