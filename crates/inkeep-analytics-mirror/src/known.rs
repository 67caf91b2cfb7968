//! What a run knows of a table's records when it begins, and which of them it has listed since: the SQLite mirror's writer and the Parquet dataset's state tell new, changed and vanished records with it.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::report::Changes;

/// The records of one table as the store held them when the run began, by id, and those the run
/// has listed since. `P` is what the store keeps of a record's place besides its hash: nothing
/// for the SQLite mirror, the month (its partition) for the Parquet dataset's state.
pub(crate) struct Known<P = ()> {
    records: HashMap<String, Entry<P>>,
}

struct Entry<P> {
    hash: [u8; 16],
    place: P,
    /// Listed in this run: a later sighting is a repeat (offsets shifted between pages).
    listed: bool,
}

/// What a listed record is to the store.
pub(crate) enum Sighting<P> {
    /// Listed earlier in this run, or unchanged: nothing to write.
    Nothing,
    New,
    /// Changed: the place its previous version was in.
    Changed {
        old_place: P,
    },
}

impl<P> Default for Known<P> {
    fn default() -> Self {
        Self {
            records: HashMap::new(),
        }
    }
}

impl<P> Known<P> {
    /// The records that `sql` selects: each one's id, its hash, then what `place` reads of the
    /// row. A hash that is missing or malformed compares unequal: the record is rewritten.
    pub(crate) fn load(
        connection: &Connection,
        sql: &str,
        place: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<P>,
    ) -> rusqlite::Result<Self> {
        let mut statement = connection.prepare(sql)?;
        let mut rows = statement.query([])?;
        let mut records = HashMap::new();
        while let Some(row) = rows.next()? {
            let hash = match row.get_ref(1)? {
                rusqlite::types::ValueRef::Blob(bytes) => bytes.try_into().unwrap_or([0; 16]),
                _ => [0; 16],
            };
            records.insert(
                row.get(0)?,
                Entry {
                    hash,
                    place: place(row)?,
                    listed: false,
                },
            );
        }
        Ok(Self { records })
    }

    /// Whether a listed record has nothing to write (listed before in this run, or unchanged),
    /// told from its id and hash before anything else of it is read.
    pub(crate) fn has_nothing_to_write(&self, id: &str, hash: [u8; 16]) -> bool {
        self.records
            .get(id)
            .is_some_and(|entry| entry.listed || entry.hash == hash)
    }

    /// Sights a listed record, now in `place`, and counts it in `changes`.
    pub(crate) fn sight(
        &mut self,
        id: &str,
        hash: [u8; 16],
        place: P,
        changes: &mut Changes,
    ) -> Sighting<P> {
        match self.records.get_mut(id) {
            Some(entry) if entry.listed => Sighting::Nothing,
            Some(entry) => {
                entry.listed = true;
                if entry.hash == hash {
                    changes.unchanged += 1;
                    Sighting::Nothing
                } else {
                    changes.updated += 1;
                    entry.hash = hash;
                    Sighting::Changed {
                        old_place: std::mem::replace(&mut entry.place, place),
                    }
                }
            }
            None => {
                changes.inserted += 1;
                self.records.insert(
                    id.to_string(),
                    Entry {
                        hash,
                        place,
                        listed: true,
                    },
                );
                Sighting::New
            }
        }
    }

    /// The records the run has not listed, with their places.
    pub(crate) fn unlisted(&self) -> Vec<(String, P)>
    where
        P: Clone,
    {
        self.records
            .iter()
            .filter(|(_, entry)| !entry.listed)
            .map(|(id, entry)| (id.clone(), entry.place.clone()))
            .collect()
    }
}
