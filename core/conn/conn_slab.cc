// SPDX-License-Identifier: Apache-2.0
// The connection table's slab: entries handed out chunk by chunk, lowest chunk first, recycled
// entries before untouched ones, and empty chunks given back to the page provider. The
// kernel's ip_vs_conn_cachep is a slab cache; this is the same idea over reserved address
// space, so that the table costs what its conns use (docs/memory.md).
#include <bit>
#include <new>

#include "core/conn/conn_table.h"
#include "core/conn/conn_table_impl.h"

namespace lb {

SlabPop ConnTable::Impl::popSlab() noexcept {
  SlabPop out;
  slab_lock.lock();
  size_t w = room_hint;
  while (w < room.size() && room[w] == 0)
    ++w;
  room_hint = w;
  if (w == room.size()) {
    slab_lock.unlock();
    return out;
  }
  const size_t c = w * 64 + static_cast<size_t>(std::countr_zero(room[w]));
  SlabChunk& ch = chunks[c];
  if (ch.free_head != kNil) {
    out.idx = ch.free_head;
    ch.free_head = entries[out.idx].free_next;
  } else {
    out.idx = static_cast<uint32_t>(c * kChunkEntries + ch.used);
    out.gen = ch.gen_base;
    out.fresh = true;
    ++ch.used;
    touched_entries.fetch_add(1, std::memory_order_relaxed);
  }
  if (ch.live++ == 0 && !(out.fresh && ch.used == 1))
    idle_chunks.fetch_sub(1, std::memory_order_relaxed);
  if (ch.free_head == kNil && ch.used == chunkLimit(c))
    room[w] &= ~(uint64_t{1} << (c % 64));
  slab_lock.unlock();
  return out;
}

uint32_t ConnTable::Impl::popFree() noexcept {
  const SlabPop p = popSlab();
  if (p.fresh) {
    // First write to the entry since its chunk was reserved or given back: here its page
    // becomes resident. No handle can name it (a stale one carries a lower generation).
    ConnEntry* e = new (&entries[p.idx]) ConnEntry();
    e->conn.generation = p.gen;
  }
  return p.idx;
}

void ConnTable::Impl::pushFree(uint32_t idx) noexcept {
  const size_t c = idx >> conn_internal::kChunkShift;
  ConnEntry& e = entries[idx];
  slab_lock.lock();
  SlabChunk& ch = chunks[c];
  e.free_next = ch.free_head;
  ch.free_head = idx;
  ch.gen_max = std::max(ch.gen_max, e.conn.generation);
  if (--ch.live == 0)
    idle_chunks.fetch_add(1, std::memory_order_relaxed);
  const size_t w = c / 64;
  room[w] |= uint64_t{1} << (c % 64);
  room_hint = std::min(room_hint, w);
  slab_lock.unlock();
}

size_t ConnTable::Impl::trimChunks(size_t budget) noexcept {
  size_t released = 0;
  size_t c = chunks.size();
  const size_t chunk_bytes = size_t{kChunkEntries} * sizeof(ConnEntry);
  while (released < budget && c > 0 &&
         idle_chunks.load(std::memory_order_relaxed) > conn_internal::kSpareChunks) {
    --c;
    slab_lock.lock();
    SlabChunk& ch = chunks[c];
    if (ch.live != 0 || ch.used == 0) {
      slab_lock.unlock();
      continue;
    }
    // Out of reach while its pages go: no room bit, so popSlab cannot pick it; nothing in it
    // is live, so nothing is pushed to it; its entries are on no chain (rule 3).
    room[c / 64] &= ~(uint64_t{1} << (c % 64));
    idle_chunks.fetch_sub(1, std::memory_order_relaxed);
    touched_entries.fetch_sub(ch.used, std::memory_order_relaxed);
    const uint32_t used = ch.used;
    slab_lock.unlock();
    // can_trim: a chunk is whole pages (24 of 4 KiB), so its pages are its own.
    const size_t bytes = pageRound(*pages, size_t{used} * sizeof(ConnEntry));
    pages->release(reinterpret_cast<char*>(entries) + c * chunk_bytes,
                   std::min(bytes, chunk_bytes));
    slab_lock.lock();
    ch.free_head = kNil;
    ch.used = 0;
    ch.gen_base = (ch.gen_max + 1) & 0x7fffffffu;
    if (ch.gen_base == 0)
      ch.gen_base = 1;
    room[c / 64] |= uint64_t{1} << (c % 64);
    room_hint = std::min(room_hint, c / 64);
    slab_lock.unlock();
    chunks_released.fetch_add(1, std::memory_order_relaxed);
    ++released;
  }
  return released;
}

}  // namespace lb
