package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/eventstore"
)

// deductAt appends, for user, a purchase (once), then a hold and a
// deduction of amount stamped at, and returns the last position.
func deductAt(tb testing.TB, store eventstore.Store, a *domain.Account, amount domain.Credits, at time.Time) uint64 {
	tb.Helper()
	stream := domain.AccountStream(a.User())
	if a.Version() == 0 {
		ev, err := a.Grant("g-start", 1_000_000, "test credits", at)
		mustDecide(tb, store, a, stream, ev, err)
	}
	job := domain.JobID(fmt.Sprintf("j-%s-%d", a.User(), a.Version()))
	ev, err := a.Hold(job, amount, at)
	mustDecide(tb, store, a, stream, ev, err)
	ev, err = a.Deduct(job, at)
	return mustDecide(tb, store, a, stream, ev, err)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// usageCases are deductions of 1 credit at times at, and the credits
// expected per day (oldest first) from a usage query.
var usageCases = []struct {
	name string
	tz   string
	now  string
	days int
	at   []string
	want []int64
}{
	{name: "UTCMidnight", now: "2026-03-10T12:00:00Z", days: 3,
		at:   []string{"2026-03-08T00:00:00Z", "2026-03-08T23:59:59.999999Z", "2026-03-09T00:00:00Z", "2026-03-07T23:59:59.999999Z"},
		want: []int64{2, 1, 0}},
	{name: "DefaultSevenDays", now: "2026-03-10T12:00:00Z",
		at:   []string{"2026-03-04T00:00:00Z", "2026-03-03T23:59:59Z", "2026-03-10T11:00:00Z", "2026-03-10T13:00:00Z"},
		want: []int64{1, 0, 0, 0, 0, 0, 2}},
	{name: "NewYorkSpringForward", tz: "America/New_York", now: "2026-03-09T12:00:00Z", days: 3,
		at: []string{
			"2026-03-07T04:59:59Z", // Mar 6, 23:59:59 EST
			"2026-03-07T05:00:00Z", // Mar 7, 00:00 EST
			"2026-03-08T04:59:59Z", // Mar 7, 23:59:59 EST
			"2026-03-08T05:00:00Z", // Mar 8, 00:00 EST (a 23-hour day)
			"2026-03-09T03:59:59Z", // Mar 8, 23:59:59 EDT
			"2026-03-09T04:00:00Z", // Mar 9, 00:00 EDT
		},
		want: []int64{2, 2, 1}},
	{name: "NewYorkFallBack", tz: "America/New_York", now: "2026-11-02T12:00:00Z", days: 2,
		at: []string{
			"2026-11-01T03:59:59Z", // Oct 31, 23:59:59 EDT
			"2026-11-01T04:00:00Z", // Nov 1, 00:00 EDT (a 25-hour day)
			"2026-11-02T04:59:59Z", // Nov 1, 23:59:59 EST
			"2026-11-02T05:00:00Z", // Nov 2, 00:00 EST
		},
		want: []int64{2, 1}},
	{name: "KolkataHalfHour", tz: "Asia/Kolkata", now: "2026-03-09T12:00:00Z", days: 2,
		at:   []string{"2026-03-07T18:29:59Z", "2026-03-07T18:30:00Z", "2026-03-08T18:29:59Z", "2026-03-08T18:30:00Z"},
		want: []int64{2, 1}},
	{name: "KathmanduQuarterHour", tz: "Asia/Kathmandu", now: "2026-03-09T12:00:00Z", days: 2,
		at:   []string{"2026-03-07T18:14:59Z", "2026-03-07T18:15:00Z", "2026-03-08T18:14:59Z"},
		want: []int64{2, 0}},
	{name: "MonroviaOddOffset", tz: "Africa/Monrovia", now: "1971-06-02T12:00:00Z", days: 2,
		at: []string{
			"1971-06-01T00:44:29Z", // May 31, 23:59:59 at -0:44:30
			"1971-06-01T00:44:30Z", // Jun 1, 00:00
			"1971-06-02T00:44:31Z", // Jun 2, 00:00:01
		},
		want: []int64{1, 1}},
}

// TestUsageDays checks the usage chart's days at midnights, across DST
// changes and in zones with half- and quarter-hour offsets (and one with an
// offset that is not a whole quarter hour, which is summed per deduction).
func TestUsageDays(t *testing.T) {
	t.Parallel()
	tests := usageCases
	e := sqliteEnv(t)
	r := mustStart(t, e, e.db, nil)
	for i, tc := range tests {
		a := domain.NewAccount(domain.UserID(fmt.Sprintf("usage%d", i)))
		for _, at := range tc.at {
			deductAt(t, e.store, a, 1, utc(at))
		}
	}
	mustWait(t, r, e.store)
	rd := NewReader(e.db)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rd.Usage(context.Background(), domain.UserID(fmt.Sprintf("usage%d", i)), UsageQuery{Days: tc.days, TimeZone: tc.tz, Now: utc(tc.now)})
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			var credits []int64
			for _, d := range got.Days {
				credits = append(credits, d.Credits)
			}
			if !slices.Equal(credits, tc.want) {
				t.Errorf("credits per day = %v (%v), want %v", credits, got.Days, tc.want)
			}
			loc, _ := time.LoadLocation(tc.tz)
			if last := got.Days[len(got.Days)-1].Date; last != utc(tc.now).In(loc).Format(time.DateOnly) {
				t.Errorf("last day = %s, want today in %s", last, loc)
			}
		})
	}
}

// TestUsageQueryErrors checks the usage query's parameter errors.
func TestUsageQueryErrors(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t)
	mustStart(t, e, e.db, nil)
	rd := NewReader(e.db)
	for _, q := range []UsageQuery{{Days: -1}, {Days: UsageDaysMax + 1}, {TimeZone: "Mars/Olympus"}, {TimeZone: "Local"}} {
		if _, err := rd.Usage(context.Background(), "u1", q); !errors.Is(err, ErrInvalidQuery) || domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("Usage(%+v) = %v, want ErrInvalidQuery with code invalid", q, err)
		}
	}
	got, err := rd.Usage(context.Background(), "nobody", UsageQuery{})
	if err != nil || len(got.Days) != UsageDaysDefault || got.Total != 0 || got.TimeZone != "UTC" {
		t.Errorf("Usage of a user without deductions = %+v, %v; want %d zero days in UTC", got, err, UsageDaysDefault)
	}
}
