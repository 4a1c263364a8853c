package bundle

import (
	"context"

	"github.com/rendertrust/rendertrust/anchor/proof"
)

// cachedChain answers each chain question once: a bundle's entries share a
// few anchors, and each anchor costs three RPC calls to check.
type cachedChain struct {
	proof.Chain
	roots    map[rootKey][32]byte
	receipts map[[32]byte]*proof.Receipt
	blocks   map[uint64][32]byte
}

type rootKey struct {
	contract proof.Address
	size     uint64
}

var _ proof.Chain = (*cachedChain)(nil)

func newCachedChain(c proof.Chain) *cachedChain {
	return &cachedChain{Chain: c, roots: map[rootKey][32]byte{}, receipts: map[[32]byte]*proof.Receipt{}, blocks: map[uint64][32]byte{}}
}

// RootAt implements proof.Chain; only answers are cached, not errors.
func (c *cachedChain) RootAt(ctx context.Context, contract proof.Address, size uint64) ([32]byte, error) {
	k := rootKey{contract, size}
	if r, ok := c.roots[k]; ok {
		return r, nil
	}
	r, err := c.Chain.RootAt(ctx, contract, size)
	if err == nil {
		c.roots[k] = r
	}
	return r, err
}

// Receipt implements proof.Chain.
func (c *cachedChain) Receipt(ctx context.Context, tx [32]byte) (*proof.Receipt, error) {
	if r, ok := c.receipts[tx]; ok {
		return r, nil
	}
	r, err := c.Chain.Receipt(ctx, tx)
	if err == nil {
		c.receipts[tx] = r
	}
	return r, err
}

// BlockHash implements proof.Chain.
func (c *cachedChain) BlockHash(ctx context.Context, number uint64) ([32]byte, error) {
	if h, ok := c.blocks[number]; ok {
		return h, nil
	}
	h, err := c.Chain.BlockHash(ctx, number)
	if err == nil {
		c.blocks[number] = h
	}
	return h, err
}
