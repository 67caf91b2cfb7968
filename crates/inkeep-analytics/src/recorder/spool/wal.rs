//! A check of the spool's write-ahead log before SQLite opens it: SQLite's recovery keeps the log
//! up to its first damaged frame and drops the rest without a word, which for the spool means
//! records lost in silence. This reads the log as SQLite's file format describes it
//! (<https://www.sqlite.org/fileformat2.html#walformat>) and counts the commits that recovery
//! would cut, so that the loss is reported as other damage is.

use std::io::Read;
use std::path::Path;

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// The magic numbers of a log whose checksums are computed on little- or big-endian words.
const MAGIC_LITTLE: u32 = 0x377f_0682;
const MAGIC_BIG: u32 = 0x377f_0683;

/// Damage found in a log: what recovery cuts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    /// The first frame recovery does not keep (counted from 1).
    pub frame: u64,
    /// How many committed transactions after it recovery drops; each recording call is one.
    pub lost_commits: u64,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// SQLite's log checksum of `data` (a multiple of 8 bytes), continued from `sum`.
fn checksum(big_endian: bool, data: &[u8], sum: (u32, u32)) -> (u32, u32) {
    let (mut s1, mut s2) = sum;
    for pair in data.chunks_exact(8) {
        let word = |at: usize| {
            let bytes = [pair[at], pair[at + 1], pair[at + 2], pair[at + 3]];
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        s1 = s1.wrapping_add(word(0)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(4)).wrapping_add(s1);
    }
    (s1, s2)
}

/// Reads the log at `path` and says what SQLite's recovery would cut from it: `None` for a log
/// that is missing, empty, not a log, or whole. A frame that fails its checksum at the very end
/// is a write a crash interrupted before its commit returned, which loses nothing.
pub(crate) fn damage(path: &Path) -> Option<Damage> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .ok()?;
    damage_in(&bytes)
}

fn damage_in(bytes: &[u8]) -> Option<Damage> {
    let header = bytes.get(..HEADER)?;
    let big_endian = match be32(header, 0) {
        MAGIC_LITTLE => false,
        MAGIC_BIG => true,
        _ => return None,
    };
    let page_size = usize::try_from(be32(header, 8)).ok()?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let salts = (be32(header, 16), be32(header, 20));
    if checksum(big_endian, &header[..24], (0, 0)) != (be32(header, 24), be32(header, 28)) {
        return None;
    }
    let frames = bytes[HEADER..].chunks_exact(FRAME_HEADER + page_size);
    // Each frame's checksum continues the previous frame's: after a damaged frame, the next ones
    // are checked against the checksum the damaged one carries, to tell the frames written after
    // it (which recovery drops) from a leftover of an older log (other salts).
    let mut sum = (be32(header, 24), be32(header, 28));
    let mut cut: Option<u64> = None;
    let mut cut_commit = false;
    let mut lost_commits = 0;
    for (index, frame) in frames.enumerate() {
        let number = index as u64 + 1;
        if (be32(frame, 8), be32(frame, 12)) != salts {
            break;
        }
        let stored = (be32(frame, 16), be32(frame, 20));
        let computed = checksum(
            big_endian,
            &frame[FRAME_HEADER..],
            checksum(big_endian, &frame[..8], sum),
        );
        let commit = be32(frame, 4) != 0;
        match cut {
            None if computed != stored => {
                cut = Some(number);
                cut_commit = commit;
            }
            None => {}
            Some(_) if computed == stored && commit => lost_commits += 1,
            Some(_) => {}
        }
        sum = stored;
    }
    let frame = cut?;
    // The damaged frame's own commit is lost too, once frames written after it show that it was
    // no interrupted last write.
    (lost_commits > 0).then_some(Damage {
        frame,
        lost_commits: lost_commits + u64::from(cut_commit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `commits` one-frame commits of 512-byte pages, as SQLite writes it.
    fn log(commits: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC_LITTLE.to_be_bytes());
        bytes.extend_from_slice(&3_007_000u32.to_be_bytes());
        bytes.extend_from_slice(&512u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&7u32.to_be_bytes());
        bytes.extend_from_slice(&9u32.to_be_bytes());
        let mut sum = checksum(false, &bytes, (0, 0));
        bytes.extend_from_slice(&sum.0.to_be_bytes());
        bytes.extend_from_slice(&sum.1.to_be_bytes());
        for n in 1..=commits {
            let mut frame = Vec::new();
            frame.extend_from_slice(&n.to_be_bytes());
            frame.extend_from_slice(&n.to_be_bytes());
            frame.extend_from_slice(&7u32.to_be_bytes());
            frame.extend_from_slice(&9u32.to_be_bytes());
            let page = vec![u8::try_from(n % 251).unwrap_or(0); 512];
            sum = checksum(false, &page, checksum(false, &frame[..8], sum));
            frame.extend_from_slice(&sum.0.to_be_bytes());
            frame.extend_from_slice(&sum.1.to_be_bytes());
            frame.extend_from_slice(&page);
            bytes.extend_from_slice(&frame);
        }
        bytes
    }

    #[test]
    fn a_whole_log_has_no_damage() {
        assert_eq!(damage_in(&log(10)), None);
        assert_eq!(damage_in(&[]), None);
        assert_eq!(damage_in(&[0; 100]), None);
    }

    #[test]
    fn a_damaged_frame_in_the_middle_counts_the_commits_cut_after_it() {
        let mut bytes = log(10);
        // The page of frame 4.
        let at = HEADER + 3 * (FRAME_HEADER + 512) + FRAME_HEADER + 100;
        bytes[at] ^= 0xff;
        assert_eq!(
            damage_in(&bytes),
            Some(Damage {
                frame: 4,
                lost_commits: 7
            })
        );
    }

    #[test]
    fn a_torn_last_frame_loses_nothing() {
        let mut bytes = log(10);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(damage_in(&bytes), None);
    }
}
