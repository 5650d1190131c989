//! The worker's connection table: a slab (Vec + free list) with generation-checked ids.
//!
//! WHAT: O(1) insert / lookup / remove. A slot index doubles as the mio `Token` offset and
//! the timer-wheel key. A freed index is *retired* until `recycle` (called once at the end
//! of every event-loop pass), so a stale event still queued in this pass's `Events` for a
//! closed connection can never be delivered to a new connection that took its slot.
//! `ConnId` adds a generation so deferred work (a spool commit that finishes later) for a
//! connection that has gone away is recognised and dropped.
//!
//! TRUST: internal bookkeeping only; nothing here sees network input.

/// Identifies one connection for its whole life: slot index plus the slot's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Slot index in the table.
    index: u32,
    /// Generation of the slot when this connection was inserted.
    generation: u32,
}

impl ConnId {
    /// Slot index (token offset, timer key).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// One slot.
#[derive(Debug)]
struct Slot<T> {
    /// Bumped each time the slot's value is removed.
    generation: u32,
    /// The occupant, if any.
    value: Option<T>,
}

/// Slab of connections.
#[derive(Debug)]
pub struct ConnTable<T> {
    /// All slots ever used. Invariant: an index is in exactly one of {occupied, `free`,
    /// `retired`}.
    slots: Vec<Slot<T>>,
    /// Indices ready for reuse.
    free: Vec<u32>,
    /// Indices freed during the current pass; moved to `free` by `recycle`.
    retired: Vec<u32>,
    /// Number of occupied slots.
    len: usize,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        ConnTable { slots: Vec::new(), free: Vec::new(), retired: Vec::new(), len: 0 }
    }
}

impl<T> ConnTable<T> {
    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Store `value`, returning its id.
    pub fn insert(&mut self, value: T) -> ConnId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            debug_assert!(slot.value.is_none());
            slot.value = Some(value);
            return ConnId { index, generation: slot.generation };
        }
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
        self.slots.push(Slot { generation: 0, value: Some(value) });
        ConnId { index, generation: 0 }
    }

    /// The live id at `index`, if occupied.
    pub fn id_at(&self, index: usize) -> Option<ConnId> {
        let slot = self.slots.get(index)?;
        slot.value.as_ref().map(|_| ConnId { index: index as u32, generation: slot.generation })
    }

    /// The connection `id`, if it is still live.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// Remove connection `id`; its index is reused only after the next `recycle`.
    pub fn remove(&mut self, id: ConnId) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.retired.push(id.index);
        self.len -= 1;
        Some(value)
    }

    /// Make retired indices available again. Call at the end of an event-loop pass.
    pub fn recycle(&mut self) {
        self.free.append(&mut self.retired);
    }

    /// Ids of every live connection (a snapshot, so the caller may remove while iterating).
    pub fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| ConnId { index: i as u32, generation: s.generation })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_recycle() {
        let mut t = ConnTable::default();
        let a = t.insert("a");
        let b = t.insert("b");
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(t.remove(a), Some("a"));
        assert_eq!(t.remove(a), None, "double remove");
        // Not reused within the same pass.
        let c = t.insert("c");
        assert_eq!(c.index(), 2);
        t.recycle();
        let d = t.insert("d");
        assert_eq!(d.index(), 0);
        assert_ne!(d, a, "generation differs");
        assert_eq!(t.get_mut(a), None, "stale id");
        assert_eq!(t.get_mut(d), Some(&mut "d"));
        assert_eq!(t.id_at(0), Some(d));
        assert_eq!(t.len(), 3);
        let mut ids = t.ids();
        ids.sort_by_key(|i| i.index());
        assert_eq!(ids, vec![d, b, c]);
    }
}
