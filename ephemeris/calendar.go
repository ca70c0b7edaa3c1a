package ephemeris

import (
	"fmt"
	"math"
)

// Calendar selects the calendar of a date.
type Calendar int

const (
	// CalendarAuto uses the Julian calendar before 1582-10-15 and the
	// Gregorian calendar from then on (the Meeus convention).
	CalendarAuto Calendar = iota
	// CalendarGregorian is the (proleptic) Gregorian calendar.
	CalendarGregorian
	// CalendarJulian is the (proleptic) Julian calendar.
	CalendarJulian
)

// String returns the calendar's name.
func (c Calendar) String() string {
	switch c {
	case CalendarGregorian:
		return "gregorian"
	case CalendarJulian:
		return "julian"
	default:
		return "auto"
	}
}

// ParseCalendar maps "gregorian", "julian" or "auto"/"" to a Calendar.
func ParseCalendar(s string) (Calendar, error) {
	switch s {
	case "gregorian":
		return CalendarGregorian, nil
	case "julian":
		return CalendarJulian, nil
	case "", "auto":
		return CalendarAuto, nil
	}
	return 0, invalid("calendar", s, "want gregorian, julian or auto")
}

// JDFromCalendar returns the Julian date of a calendar date; day may carry
// a fraction (day 4.81 is 4 d 19.44 h). Years are astronomical (0 = 1 BC,
// −123 = 124 BC). Meeus, Astronomical Algorithms, ch. 7, extended to
// negative years with floor division.
func JDFromCalendar(year, month int, day float64, cal Calendar) (float64, error) {
	if month < 1 || month > 12 {
		return 0, invalid("month", month, "must be 1..12")
	}
	if math.IsNaN(day) || day < 1 || day >= 32 {
		return 0, invalid("day", day, "must be in [1, 32)")
	}
	if year < -100000 || year > 100000 {
		return 0, invalid("year", year, "out of range ±100000")
	}
	y, m := year, month
	if m <= 2 {
		y--
		m += 12
	}
	gregorian := cal == CalendarGregorian
	if cal == CalendarAuto {
		gregorian = year > 1582 || (year == 1582 && (month > 10 || (month == 10 && day >= 15)))
	}
	b := 0
	if gregorian {
		a := floorDiv(y, 100)
		b = 2 - a + floorDiv(a, 4)
	}
	jd := math.Floor(365.25*float64(y+4716)) + math.Floor(30.6001*float64(m+1)) + day + float64(b) - 1524.5
	return jd, nil
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// CalendarDate is a date with a fractional day.
type CalendarDate struct {
	Year, Month int
	Day         float64
	Calendar    Calendar
}

// String formats the date as YYYY-MM-DD.ddddd with its calendar.
func (d CalendarDate) String() string {
	return fmt.Sprintf("%d-%02d-%08.5f (%s)", d.Year, d.Month, d.Day, d.Calendar)
}

// CalendarFromJD converts a Julian date to a calendar date (Meeus ch. 7).
// With CalendarAuto, dates before JD 2299160.5 (1582-10-15) are Julian.
func CalendarFromJD(jd float64, cal Calendar) (CalendarDate, error) {
	if math.IsNaN(jd) || math.IsInf(jd, 0) || jd < -1e8 || jd > 1e8 {
		return CalendarDate{}, invalid("jd", jd, "not a finite Julian date within ±1e8")
	}
	z := math.Floor(jd + 0.5)
	f := jd + 0.5 - z
	gregorian := cal == CalendarGregorian || (cal == CalendarAuto && z >= 2299161)
	a := z
	if gregorian {
		alpha := math.Floor((z - 1867216.25) / 36524.25)
		a = z + 1 + alpha - math.Floor(alpha/4)
	}
	b := a + 1524
	c := math.Floor((b - 122.1) / 365.25)
	d := math.Floor(365.25 * c)
	e := math.Floor((b - d) / 30.6001)
	day := b - d - math.Floor(30.6001*e) + f
	month := int(e) - 1
	if e >= 14 {
		month = int(e) - 13
	}
	year := int(c) - 4716
	if month <= 2 {
		year = int(c) - 4715
	}
	used := CalendarJulian
	if gregorian {
		used = CalendarGregorian
	}
	return CalendarDate{Year: year, Month: month, Day: day, Calendar: used}, nil
}
