//! Typed ids for the model's flat arrays: operations ([`OpId`]),
//! micro-operations ([`MopId`]), keys ([`KeyId`]), processes ([`ProcId`])
//! and the key index's write slots ([`Slot`]), each a `u32` index
//! (`#[repr(transparent)]`: the same size, layout and code as the bare
//! `u32` they replace), with a named
//! [`OpId::NONE`]-style sentinel (`u32::MAX`) for "no such thing" where a
//! table keeps one per entry. [`IdVec`] is a `Vec` indexed by one kind of
//! id, so `ops[mop_id]` is a type error instead of a wrong answer; it still
//! takes `usize` indices and ranges (positions from `enumerate`, slices),
//! so code that walks an array by position reads as before.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Index, IndexMut};
use std::slice::SliceIndex;

/// An id that indexes an [`IdVec`].
pub trait Idx: Copy + Eq {
    /// The id of position `i` (`i` fits in `u32`: the model's arrays are
    /// indexed by `u32`).
    fn new(i: usize) -> Self;
    /// Its position in the array it indexes.
    fn index(self) -> usize;
}

macro_rules! id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// "No such thing", where a table keeps one id per entry.
            pub const NONE: $name = $name(u32::MAX);

            /// The id of position `i`.
            #[inline]
            pub const fn new(i: usize) -> Self {
                debug_assert!(i < u32::MAX as usize);
                $name(i as u32)
            }

            /// Its position in the array it indexes.
            #[inline]
            pub const fn index(self) -> usize {
                self.0 as usize
            }

            /// Whether this is [`Self::NONE`].
            #[inline]
            pub const fn is_none(self) -> bool {
                self.0 == u32::MAX
            }

            /// `None` for [`Self::NONE`].
            #[inline]
            pub const fn get(self) -> Option<Self> {
                if self.is_none() {
                    None
                } else {
                    Some(self)
                }
            }
        }

        impl Idx for $name {
            #[inline]
            fn new(i: usize) -> Self {
                $name::new(i)
            }
            #[inline]
            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl<T> Index<$name> for IdVec<$name, T> {
            type Output = T;
            #[inline]
            fn index(&self, i: $name) -> &T {
                &self.raw[i.index()]
            }
        }

        impl<T> IndexMut<$name> for IdVec<$name, T> {
            #[inline]
            fn index_mut(&mut self, i: $name) -> &mut T {
                &mut self.raw[i.index()]
            }
        }
    };
}

id! {
    /// An operation: an index into `History::ops`.
    OpId
}
id! {
    /// A micro-operation: an index into `History::mops`.
    MopId
}
id! {
    /// An interned key: an index into `History::keys`.
    KeyId
}
id! {
    /// An interned (dense) process id: an index into `History::processes`.
    ProcId
}
id! {
    /// A vertex write's slot in the key index (`KeyIndex::writes`: each
    /// key's writes contiguous, grouped by process).
    Slot
}

/// A `Vec` indexed by ids of one kind `I` (and, like any `Vec`, by
/// `usize` positions and ranges).
#[repr(transparent)]
pub struct IdVec<I, T> {
    pub raw: Vec<T>,
    _id: PhantomData<fn(&I)>,
}

impl<I: Idx, T> IdVec<I, T> {
    pub const fn new() -> Self {
        IdVec {
            raw: Vec::new(),
            _id: PhantomData,
        }
    }

    pub fn from_vec(raw: Vec<T>) -> Self {
        IdVec {
            raw,
            _id: PhantomData,
        }
    }

    /// `n` copies of `value`.
    pub fn filled(value: T, n: usize) -> Self
    where
        T: Clone,
    {
        Self::from_vec(vec![value; n])
    }

    /// The id the next pushed entry gets.
    #[inline]
    pub fn next_id(&self) -> I {
        I::new(self.raw.len())
    }

    /// Pushes `value` and returns its id.
    #[inline]
    pub fn push_id(&mut self, value: T) -> I {
        let id = self.next_id();
        self.raw.push(value);
        id
    }

    /// Every id, in order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = I> + ExactSizeIterator + Clone {
        (0..self.raw.len()).map(I::new)
    }

    /// Entries with their ids.
    pub fn iter_enumerated(&self) -> impl DoubleEndedIterator<Item = (I, &T)> + ExactSizeIterator {
        self.raw.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }
}

impl<I, T> Deref for IdVec<I, T> {
    type Target = Vec<T>;
    #[inline]
    fn deref(&self) -> &Vec<T> {
        &self.raw
    }
}

impl<I, T> DerefMut for IdVec<I, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.raw
    }
}

impl<I, T, R: SliceIndex<[T]>> Index<R> for IdVec<I, T> {
    type Output = R::Output;
    #[inline]
    fn index(&self, i: R) -> &R::Output {
        &self.raw[i]
    }
}

impl<I, T, R: SliceIndex<[T]>> IndexMut<R> for IdVec<I, T> {
    #[inline]
    fn index_mut(&mut self, i: R) -> &mut R::Output {
        &mut self.raw[i]
    }
}

impl<I, T> Default for IdVec<I, T> {
    fn default() -> Self {
        IdVec {
            raw: Vec::new(),
            _id: PhantomData,
        }
    }
}

impl<I, T: Clone> Clone for IdVec<I, T> {
    fn clone(&self) -> Self {
        IdVec {
            raw: self.raw.clone(),
            _id: PhantomData,
        }
    }
}

impl<I, T: PartialEq> PartialEq for IdVec<I, T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<I, T: fmt::Debug> fmt::Debug for IdVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<I, T> FromIterator<T> for IdVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(it: It) -> Self {
        IdVec {
            raw: it.into_iter().collect(),
            _id: PhantomData,
        }
    }
}

impl<'a, I, T> IntoIterator for &'a IdVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter()
    }
}

impl<'a, I, T> IntoIterator for &'a mut IdVec<I, T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter_mut()
    }
}

impl<I, T> IntoIterator for IdVec<I, T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_free_and_index_their_own_arrays() {
        assert_eq!(std::mem::size_of::<OpId>(), 4);
        assert_eq!(std::mem::size_of::<(OpId, ProcId)>(), 8);
        let mut v: IdVec<OpId, &str> = IdVec::new();
        let a = v.push_id("a");
        let b = v.push_id("b");
        assert_eq!((a, b), (OpId(0), OpId(1)));
        assert_eq!((v[b], v[0], &v[0..1]), ("b", "a", &["a"][..]));
        assert_eq!(v.ids().collect::<Vec<_>>(), vec![a, b]);
        assert!(OpId::NONE.is_none() && OpId::NONE.get().is_none());
        assert_eq!(b.get(), Some(b));
        assert_eq!(format!("{b} {b:?}"), "1 1");
    }
}
