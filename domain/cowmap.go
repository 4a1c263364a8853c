package domain

import "maps"

// cowMergeMin is the overlay size below which a copy of a cowMap never
// merges: a small map is copied whole.
const cowMergeMin = 64

// cowMap is a map whose copies share one immutable base and keep their own
// writes in an overlay, so copying it costs the overlay, not the whole map.
// An account's holds (one per job it ever submitted) are copied on every
// command that loads the account: a deep copy would make each submission
// cost more the more jobs the creator has. A copy merges the overlay into a
// new base once the overlay outgrows 1/16 of the base, so the merges cost
// O(1) per write, amortized. The zero value is an empty map.
type cowMap[K comparable, V any] struct {
	base    map[K]V // shared between copies: never written
	overlay map[K]V // this copy's own writes
}

// get returns the value of k.
func (m *cowMap[K, V]) get(k K) (V, bool) {
	if v, ok := m.overlay[k]; ok {
		return v, true
	}
	v, ok := m.base[k]
	return v, ok
}

// set stores v under k, in this copy only.
func (m *cowMap[K, V]) set(k K, v V) {
	if m.overlay == nil {
		m.overlay = map[K]V{}
	}
	m.overlay[k] = v
}

// clone returns an independent copy; m is only read (a cached aggregate is
// copied by several loaders at once).
func (m *cowMap[K, V]) clone() cowMap[K, V] {
	if len(m.overlay) < max(cowMergeMin, len(m.base)/16) {
		return cowMap[K, V]{base: m.base, overlay: maps.Clone(m.overlay)}
	}
	merged := make(map[K]V, len(m.base)+len(m.overlay))
	maps.Copy(merged, m.base)
	maps.Copy(merged, m.overlay)
	return cowMap[K, V]{base: merged}
}

// all calls f for every key and value, in no order.
func (m *cowMap[K, V]) all(f func(K, V)) {
	for k, v := range m.base {
		if _, shadowed := m.overlay[k]; !shadowed {
			f(k, v)
		}
	}
	for k, v := range m.overlay {
		f(k, v)
	}
}

// flat returns every key and value in one new map.
func (m *cowMap[K, V]) flat() map[K]V {
	out := make(map[K]V, len(m.base)+len(m.overlay))
	m.all(func(k K, v V) { out[k] = v })
	return out
}
