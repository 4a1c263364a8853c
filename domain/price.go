package domain

import (
	"fmt"
	"maps"
)

// defaultPrices are the credits one job of each type costs unless configured.
var defaultPrices = map[JobType]Credits{
	JobRender:       10,
	JobInference:    5,
	JobCPUBenchmark: 1,
	JobEcho:         0,
	JobGeneric:      1,
}

// PriceTable maps each job type to the credits one job costs. The zero
// PriceTable uses the default prices. It is immutable, so it is safe to share.
type PriceTable struct {
	prices map[JobType]Credits
}

// DefaultPrices returns the default table: render 10, inference 5,
// cpu_benchmark 1, echo 0, generic 1.
func DefaultPrices() PriceTable { return PriceTable{prices: maps.Clone(defaultPrices)} }

// NewPriceTable returns the default table with the prices in overrides
// replacing the defaults. It returns ErrUnknownJobType for a key that is not a
// job type and ErrInvalidPrice for a price below zero or above creditsMax.
func NewPriceTable(overrides map[JobType]Credits) (PriceTable, error) {
	t := DefaultPrices()
	for typ, price := range overrides {
		if !typ.Valid() {
			return PriceTable{}, fmt.Errorf("price for %q: %w", typ, ErrUnknownJobType)
		}
		if price < 0 || price > creditsMax {
			return PriceTable{}, fmt.Errorf("%w: %s costs %d", ErrInvalidPrice, typ, price)
		}
		t.prices[typ] = price
	}
	return t, nil
}

// Cost returns the price of one job of type typ, or ErrUnknownJobType.
func (t PriceTable) Cost(typ JobType) (Credits, error) {
	prices := t.prices
	if prices == nil {
		prices = defaultPrices
	}
	price, ok := prices[typ]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownJobType, truncate(string(typ), 40))
	}
	return price, nil
}

// Prices returns a copy of the whole table. It never fails.
func (t PriceTable) Prices() map[JobType]Credits {
	if t.prices == nil {
		return maps.Clone(defaultPrices)
	}
	return maps.Clone(t.prices)
}
