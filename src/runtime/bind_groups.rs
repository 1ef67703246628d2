//! [`BindGroupCache`]: bind groups made once and reused while the same pipeline binds the same buffers.
//!
//! Creating a bind group is the dearest part of a dispatch on the web path: every entry becomes a JS
//! object, the browser validates the descriptor, and (with auto layouts) `getBindGroupLayout` makes a
//! new layout object each time. A decoding step binds the same weights, the same pooled activation
//! buffers (the pool hands them out in the same order each step) and the same uniform slots, so after
//! a token or two every bind group of a step is found here instead of made.
//!
//! Keys hold clones of the wgpu handles (their identity, never reused while a clone lives), so an entry
//! can only match while the same buffer is bound again. The cache is bounded: when full it is emptied
//! (a forward pass of new shapes then makes its groups anew).

use rustc_hash::FxHashMap;

/// One bound buffer: its binding number, the buffer, and the bound range (`size` 0: to the end).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BoundBuffer {
    pub binding: u32,
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    pipeline: wgpu::ComputePipeline,
    entries: Vec<BoundBuffer>,
}

/// Bind groups by (pipeline, bound buffers).
pub(crate) struct BindGroupCache {
    groups: FxHashMap<Key, wgpu::BindGroup>,
    capacity: usize,
}

impl BindGroupCache {
    pub(crate) fn new(capacity: usize) -> Self {
        BindGroupCache {
            groups: FxHashMap::default(),
            capacity,
        }
    }

    /// The bind group of `pipeline`'s group 0 binding `entries`, and whether it was made now.
    pub(crate) fn get_or_create(
        &mut self,
        device: &wgpu::Device,
        pipeline: &wgpu::ComputePipeline,
        entries: Vec<BoundBuffer>,
    ) -> (wgpu::BindGroup, bool) {
        let key = Key {
            pipeline: pipeline.clone(),
            entries,
        };
        if let Some(group) = self.groups.get(&key) {
            return (group.clone(), false);
        }
        let group = create(device, pipeline, &key.entries, None);
        if self.groups.len() >= self.capacity {
            self.groups.clear();
        }
        self.groups.insert(key, group.clone());
        (group, true)
    }

    pub(crate) fn clear(&mut self) {
        self.groups.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }
}

/// A bind group of `pipeline`'s group 0 over `buffers`, and a texture view at binding 0 when given,
/// made without the cache.
pub(crate) fn create(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[BoundBuffer],
    texture: Option<&wgpu::TextureView>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
        .iter()
        .map(|e| wgpu::BindGroupEntry {
            binding: e.binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &e.buffer,
                offset: e.offset,
                size: std::num::NonZeroU64::new(e.size),
            }),
        })
        .chain(texture.map(|view| wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::TextureView(view),
        }))
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}
