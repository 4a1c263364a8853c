package projections

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/internal/sqldb"
)

// usageProjection is the "usage" read model: one row per deduction (the
// credits a completed job consumed), bucketed by local day at query time
// (table rm_usage).
type usageProjection struct{}

var _ Projection = usageProjection{}

const usageView = "rm_usage"

var usageColumns = []string{"entry_id", "user_id", "at", "amount"}

// Name returns "usage".
func (usageProjection) Name() string { return "usage" }

// Tables returns rm_usage, keyed by entry (event) id, indexed by user and
// time.
func (usageProjection) Tables() []Table {
	return []Table{{
		Name:       usageView,
		Columns:    []string{"entry_id TEXT NOT NULL", "user_id TEXT NOT NULL", "at BIGINT NOT NULL", "amount BIGINT NOT NULL"},
		PrimaryKey: []string{"entry_id"},
		Indexes:    [][]string{{"user_id", "at"}},
	}}
}

// Apply inserts a row for each deduction of credits.
func (usageProjection) Apply(ctx context.Context, tx *sqldb.Tx, t Tables, events []Event) error {
	type row struct {
		entry, user string
		at, amount  int64
	}
	var rows []row
	for _, e := range events {
		if d, ok := e.Decoded.(domain.CreditsDeducted); ok && d.Amount != 0 {
			rows = append(rows, row{e.ID, string(d.UserID), micros(d.At), int64(d.Amount)})
		}
	}
	w := rowWriter{table: t.Name(usageView), columns: usageColumns}
	return w.write(ctx, tx, len(rows), func(i int, args []any) []any {
		return append(args, rows[i].entry, rows[i].user, rows[i].at, rows[i].amount)
	})
}

// Usage limits.
const (
	// UsageDaysDefault is the number of days a usage query covers when it
	// asks for none.
	UsageDaysDefault = 7
	// UsageDaysMax bounds the days one usage query covers.
	UsageDaysMax = 90
)

// UsageQuery selects the days of a usage chart.
type UsageQuery struct {
	// Days is how many days, ending today, 1..UsageDaysMax; 0 means
	// UsageDaysDefault.
	Days int
	// TimeZone is an IANA time zone name ("America/New_York") whose
	// midnights divide the days; "" means UTC.
	TimeZone string
	// Now is the current time; the zero time means time.Now().
	Now time.Time
}

// Usage is a user's credit consumption (deductions for completed jobs) per
// local day.
type Usage struct {
	TimeZone string     `json:"time_zone"`
	Days     []UsageDay `json:"days"` // oldest first, one per day, today last
	Total    int64      `json:"total"`
}

// UsageDay is the credits consumed on one local day.
type UsageDay struct {
	Date    string `json:"date"` // YYYY-MM-DD in the query's time zone
	Credits int64  `json:"credits"`
}

// Usage returns the credits user consumed on each of the last q.Days local
// days, today included, with 0 for days without any. Days are calendar
// days of q.TimeZone, so they are 23 or 25 hours long across a DST change.
// It fails with ErrInvalidQuery for a bad day count or time zone, or a
// database error.
func (r *Reader) Usage(ctx context.Context, user domain.UserID, q UsageQuery) (Usage, error) {
	days, loc, now, err := q.resolve()
	if err != nil {
		return Usage{}, err
	}
	today := now.In(loc)
	first := time.Date(today.Year(), today.Month(), today.Day()-(days-1), 0, 0, 0, 0, loc)
	end := time.Date(today.Year(), today.Month(), today.Day()+1, 0, 0, 0, 0, loc)
	out := Usage{TimeZone: loc.String(), Days: make([]UsageDay, days)}
	index := make(map[string]int, days)
	for i := range days {
		d := time.Date(first.Year(), first.Month(), first.Day()+i, 0, 0, 0, 0, loc).Format(time.DateOnly)
		out.Days[i].Date, index[d] = d, i
	}
	add := func(at time.Time, credits int64) {
		if i, ok := index[at.In(loc).Format(time.DateOnly)]; ok {
			out.Days[i].Credits += credits
			out.Total += credits
		}
	}
	if err := r.usageSlots(ctx, user, first, end, loc, add); err != nil {
		return Usage{}, err
	}
	return out, nil
}

func (q UsageQuery) resolve() (days int, loc *time.Location, now time.Time, err error) {
	days = q.Days
	if days == 0 {
		days = UsageDaysDefault
	}
	if days < 1 || days > UsageDaysMax {
		return 0, nil, now, fmt.Errorf("%w: %d days, want 1..%d", ErrInvalidQuery, q.Days, UsageDaysMax)
	}
	loc = time.UTC
	if q.TimeZone != "" {
		if loc, err = time.LoadLocation(q.TimeZone); err != nil || q.TimeZone == "Local" {
			return 0, nil, now, fmt.Errorf("%w: unknown time zone %q", ErrInvalidQuery, q.TimeZone)
		}
	}
	now = q.Now
	if now.IsZero() {
		now = time.Now()
	}
	return days, loc, now, nil
}

// usageSlotMicros is the width of the slots usage is summed in by the
// database: 15 minutes, which divides every UTC offset in use since the
// 1970s, so a slot never straddles a local midnight.
const usageSlotMicros = int64(15 * time.Minute / time.Microsecond)

// usageSlots calls add with the credits consumed in [from, to), summed per
// 15-minute slot by the database when loc's offsets in that range are
// whole slots, else per deduction.
func (r *Reader) usageSlots(ctx context.Context, user domain.UserID, from, to time.Time, loc *time.Location, add func(time.Time, int64)) error {
	q := "SELECT at, amount FROM " + usageView + " WHERE user_id = ? AND at >= ? AND at < ?"
	slotted := slotAligned(from, to, loc)
	if slotted {
		q = fmt.Sprintf("SELECT at / %d, CAST(SUM(amount) AS BIGINT) FROM %s WHERE user_id = ? AND at >= ? AND at < ? GROUP BY at / %d",
			usageSlotMicros, usageView, usageSlotMicros)
	}
	rows, err := r.db.Query(ctx, q, string(user), from.UnixMicro(), to.UnixMicro())
	if err != nil {
		return fmt.Errorf("read usage of %s: %w", user, err)
	}
	defer rows.Close()
	for rows.Next() {
		var at, credits sql.NullInt64
		if err := rows.Scan(&at, &credits); err != nil {
			return fmt.Errorf("read usage of %s: %w", user, err)
		}
		if slotted {
			at.Int64 *= usageSlotMicros
		}
		add(timeOf(at.Int64), credits.Int64)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read usage of %s: %w", user, err)
	}
	return nil
}

// slotAligned reports whether every UTC offset loc uses in [from, to) is a
// whole number of usage slots.
func slotAligned(from, to time.Time, loc *time.Location) bool {
	for t := from; t.Before(to); {
		_, offset := t.In(loc).Zone()
		if int64(offset)*int64(time.Second/time.Microsecond)%usageSlotMicros != 0 {
			return false
		}
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.After(t) {
			return true
		}
		t = end
	}
	return true
}
