package merkle_test

import (
	"testing"

	"github.com/rendertrust/rendertrust/anchor/merkle"
	"github.com/rendertrust/rendertrust/anchor/merkle/storetest"
)

func TestMemStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) merkle.NodeStore { return new(merkle.MemStore) })
}
