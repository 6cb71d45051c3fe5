//! Reading a v1 update with yrs' own decoder into what the order needs: per client its blocks
//! (text, tombstones, anything else; garbage-collected ranges and skips), then the delete set.

use super::Unfollowable;
use yrs::block::ItemContent;
use yrs::encoding::read::Read;
use yrs::updates::decoder::{Decoder, DecoderV1};
use yrs::ID;

pub(super) const BLOCK_GC: u8 = 0;
pub(super) const BLOCK_SKIP: u8 = 10;
pub(super) const HAS_ORIGIN: u8 = 0x80;
pub(super) const HAS_RIGHT_ORIGIN: u8 = 0x40;
pub(super) const HAS_PARENT_SUB: u8 = 0x20;

/// What a block of an update holds, as far as the text is concerned.
pub(in crate::text_index) enum Holds {
    /// Visible text.
    Text(String),
    /// Deleted content (a tombstone), of whatever type.
    Deleted,
    /// Anything else: map values, embeds, formatting, nested types.
    Other,
}

/// Which type an item belongs to, as its header says.
#[derive(Clone, PartialEq, Eq)]
pub(in crate::text_index) enum Parent {
    /// Directly under the root text of this name (not a map entry).
    Root(Box<str>),
    /// A map entry, or an item of a nested type.
    Elsewhere,
    /// It has neighbours: its parent is theirs.
    Neighbours,
}

pub(in crate::text_index) struct Item {
    pub(super) id: ID,
    pub(super) len: u32,
    pub(super) origin: Option<ID>,
    pub(super) right_origin: Option<ID>,
    pub(in crate::text_index) parent: Parent,
    pub(super) holds: Holds,
}

pub(in crate::text_index) enum Block {
    Item(Item),
    Gc { id: ID, len: u32 },
    Skip { id: ID, len: u32 },
}

impl Block {
    pub(super) fn range(&self) -> (ID, u32) {
        match self {
            Block::Item(Item { id, len, .. }) | Block::Gc { id, len } | Block::Skip { id, len } => {
                (*id, *len)
            }
        }
    }
}

/// A v1 update read with yrs' own decoder: per client its blocks, then the delete set.
pub(in crate::text_index) type Decoded = (Vec<Vec<Block>>, Vec<(u64, Vec<(u32, u32)>)>);

pub(in crate::text_index) fn decode(update: &[u8]) -> Result<Decoded, Unfollowable> {
    let mut d = DecoderV1::from(update);
    let clients: u32 = d.read_var()?;
    let mut out = Vec::new();
    for _ in 0..clients {
        let structs: u32 = d.read_var()?;
        let client = d.read_client()?;
        let mut clock: u32 = d.read_var()?;
        let mut blocks = Vec::new();
        for _ in 0..structs {
            let id = ID::new(client, clock);
            let info = d.read_info()?;
            let block = match info {
                BLOCK_SKIP => Block::Skip {
                    id,
                    len: d.read_var()?,
                },
                BLOCK_GC => Block::Gc {
                    id,
                    len: d.read_len()?,
                },
                _ => Block::Item(decode_item(&mut d, id, info)?),
            };
            let (_, len) = block.range();
            if len == 0 {
                return Err(Unfollowable("a struct of length 0"));
            }
            clock = clock
                .checked_add(len)
                .ok_or(Unfollowable("a clock past 32 bits"))?;
            blocks.push(block);
        }
        out.push(blocks);
    }
    let mut deletes = Vec::new();
    let clients: u32 = d.read_var()?;
    for _ in 0..clients {
        let client: u64 = d.read_var()?;
        let ranges: u32 = d.read_var()?;
        let mut list = Vec::new();
        for _ in 0..ranges {
            list.push((d.read_ds_clock()?, d.read_ds_len()?));
        }
        deletes.push((client, list));
    }
    Ok((out, deletes))
}

pub(super) fn decode_item(d: &mut DecoderV1<'_>, id: ID, info: u8) -> Result<Item, Unfollowable> {
    let origin = (info & HAS_ORIGIN != 0)
        .then(|| d.read_left_id())
        .transpose()?;
    let right_origin = (info & HAS_RIGHT_ORIGIN != 0)
        .then(|| d.read_right_id())
        .transpose()?;
    let parent = if origin.is_none() && right_origin.is_none() {
        let root = if d.read_parent_info()? {
            Some(Box::<str>::from(d.read_string()?))
        } else {
            d.read_left_id()?; // the item of a nested type
            None
        };
        let keyed = info & HAS_PARENT_SUB != 0;
        if keyed {
            d.read_string()?; // a map entry's key
        }
        match root {
            Some(name) if !keyed => Parent::Root(name),
            _ => Parent::Elsewhere,
        }
    } else {
        Parent::Neighbours
    };
    let content = ItemContent::decode(d, info)?;
    let len = content.len_utf16();
    let holds = match content {
        ItemContent::String(s) => Holds::Text(s.as_str().to_owned()),
        ItemContent::Deleted(_) => Holds::Deleted,
        _ => Holds::Other,
    };
    Ok(Item {
        id,
        len,
        origin,
        right_origin,
        parent,
        holds,
    })
}
