package fits

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Sentinel errors.
var (
	// ErrFormat reports a file that is not a FITS image this package reads.
	ErrFormat = errors.New("fits: bad format")
	// ErrImage reports an image that cannot be written (bad size, NaN
	// header values).
	ErrImage = errors.New("fits: invalid image")
)

// BlockSize is the FITS record length in bytes.
const BlockSize = 2880

// WCS is a celestial SIN-projection world coordinate system. Pixel
// numbers are FITS ones (1-based).
type WCS struct {
	// CRVAL1/CRVAL2: RA and Dec in degrees of the reference pixel.
	RA, Dec float64
	// CRPIX1/CRPIX2: 1-based reference pixel.
	RefX, RefY float64
	// CDELT1/CDELT2 in degrees (CDELT1 is normally negative).
	DeltaX, DeltaY float64
	// Projection is the 3-letter code ("SIN" by default).
	Projection string
}

// Image is a 2-D image in the primary HDU.
type Image struct {
	Width, Height int
	// Data[y*Width+x]; row 0 is the first FITS row (the bottom of the
	// image as displayed).
	Data []float32
	WCS  WCS
	// BMaj, BMin (degrees, FWHM) and BPA (degrees east of north); zero
	// BMaj omits the beam keywords.
	BMaj, BMin, BPA float64
	// BUnit is the pixel unit, e.g. "Jy/beam".
	BUnit string
	// Object, Telescope and DateObs fill OBJECT, TELESCOP and DATE-OBS
	// when not empty.
	Object, Telescope, DateObs string
	// FreqHz is the reference frequency (RESTFRQ); zero omits it.
	FreqHz float64
	// Extra cards to write (or all cards read that are not mapped to a
	// field above), in order.
	Extra []Card
}

// Card is one header keyword record.
type Card struct {
	Key     string
	Value   string // the raw value text (strings keep their quotes)
	Comment string
}

func fmtFloat(v float64) string {
	s := strconv.FormatFloat(v, 'G', 17, 64)
	if !strings.ContainsAny(s, ".E") {
		s += ".0"
	}
	return s
}

func quote(s string) string {
	s = "'" + strings.ReplaceAll(s, "'", "''")
	for len(s) < 9 {
		s += " "
	}
	return s + "'"
}

func card(key, value, comment string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-8s", key)
	if value != "" || key != "END" && key != "COMMENT" && key != "HISTORY" {
		if strings.HasPrefix(value, "'") {
			fmt.Fprintf(&b, "= %-20s", value) // strings start in column 11
		} else {
			fmt.Fprintf(&b, "= %20s", value) // numbers and logicals end in column 30
		}
		if comment != "" {
			b.WriteString(" / " + comment)
		}
	}
	out := b.Bytes()
	if len(out) > 80 {
		out = out[:80]
	}
	return append(out, bytes.Repeat([]byte(" "), 80-len(out))...)
}

// Write writes im as a FITS file with a single primary HDU, BITPIX -32.
func Write(w io.Writer, im *Image) error {
	if im == nil || im.Width < 1 || im.Height < 1 || len(im.Data) != im.Width*im.Height {
		if im == nil {
			return fmt.Errorf("%w: nil image", ErrImage)
		}
		return fmt.Errorf("%w: %d×%d image with %d pixels", ErrImage, im.Width, im.Height, len(im.Data))
	}
	for name, v := range map[string]float64{"CRVAL1": im.WCS.RA, "CRVAL2": im.WCS.Dec, "CRPIX1": im.WCS.RefX,
		"CRPIX2": im.WCS.RefY, "CDELT1": im.WCS.DeltaX, "CDELT2": im.WCS.DeltaY, "BMAJ": im.BMaj, "BMIN": im.BMin, "BPA": im.BPA, "RESTFRQ": im.FreqHz} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s = %v: must be finite", ErrImage, name, v)
		}
	}
	proj := im.WCS.Projection
	if proj == "" {
		proj = "SIN"
	}
	if len(proj) != 3 {
		return fmt.Errorf("%w: projection %q: must be a 3-letter code", ErrImage, proj)
	}
	var h bytes.Buffer
	h.Write(card("SIMPLE", "T", "conforms to FITS standard"))
	h.Write(card("BITPIX", "-32", "IEEE single precision"))
	h.Write(card("NAXIS", "2", ""))
	h.Write(card("NAXIS1", strconv.Itoa(im.Width), ""))
	h.Write(card("NAXIS2", strconv.Itoa(im.Height), ""))
	h.Write(card("EXTEND", "T", ""))
	h.Write(card("CTYPE1", quote("RA---"+proj), ""))
	h.Write(card("CRVAL1", fmtFloat(im.WCS.RA), "deg"))
	h.Write(card("CRPIX1", fmtFloat(im.WCS.RefX), ""))
	h.Write(card("CDELT1", fmtFloat(im.WCS.DeltaX), "deg"))
	h.Write(card("CUNIT1", quote("deg"), ""))
	h.Write(card("CTYPE2", quote("DEC--"+proj), ""))
	h.Write(card("CRVAL2", fmtFloat(im.WCS.Dec), "deg"))
	h.Write(card("CRPIX2", fmtFloat(im.WCS.RefY), ""))
	h.Write(card("CDELT2", fmtFloat(im.WCS.DeltaY), "deg"))
	h.Write(card("CUNIT2", quote("deg"), ""))
	h.Write(card("RADESYS", quote("ICRS"), ""))
	h.Write(card("EQUINOX", "2000.0", ""))
	if im.BMaj != 0 {
		h.Write(card("BMAJ", fmtFloat(im.BMaj), "restoring beam major axis FWHM (deg)"))
		h.Write(card("BMIN", fmtFloat(im.BMin), "restoring beam minor axis FWHM (deg)"))
		h.Write(card("BPA", fmtFloat(im.BPA), "restoring beam position angle (deg)"))
	}
	if im.BUnit != "" {
		h.Write(card("BUNIT", quote(im.BUnit), ""))
	}
	if im.FreqHz != 0 {
		h.Write(card("RESTFRQ", fmtFloat(im.FreqHz), "Hz"))
	}
	if im.Object != "" {
		h.Write(card("OBJECT", quote(im.Object), ""))
	}
	if im.Telescope != "" {
		h.Write(card("TELESCOP", quote(im.Telescope), ""))
	}
	if im.DateObs != "" {
		h.Write(card("DATE-OBS", quote(im.DateObs), ""))
	}
	for _, c := range im.Extra {
		if len(c.Key) > 8 || c.Key == "" || c.Key == "END" {
			return fmt.Errorf("%w: extra card key %q: must be 1–8 characters and not END", ErrImage, c.Key)
		}
		h.Write(card(strings.ToUpper(c.Key), c.Value, c.Comment))
	}
	h.Write(card("END", "", ""))
	for h.Len()%BlockSize != 0 {
		h.WriteByte(' ')
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(h.Bytes()); err != nil {
		return fmt.Errorf("fits: write header: %w", err)
	}
	buf := make([]byte, 4*len(im.Data))
	for i, v := range im.Data {
		binary.BigEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	if pad := len(buf) % BlockSize; pad != 0 {
		buf = append(buf, make([]byte, BlockSize-pad)...)
	}
	if _, err := bw.Write(buf); err != nil {
		return fmt.Errorf("fits: write data: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fits: write: %w", err)
	}
	return nil
}

// WriteFile writes im to path.
func WriteFile(path string, im *Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fits: %w", err)
	}
	if err := Write(f, im); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fits: %w", err)
	}
	return nil
}

// ReadFile reads the FITS image at path.
func ReadFile(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fits: %w", err)
	}
	defer f.Close()
	return Read(bufio.NewReader(f))
}

// parseCard splits an 80-byte record into key, raw value and comment.
func parseCard(rec []byte) Card {
	key := strings.TrimSpace(string(rec[:8]))
	if len(rec) < 10 || string(rec[8:10]) != "= " {
		return Card{Key: key, Comment: strings.TrimRight(string(rec[8:]), " ")}
	}
	rest := string(rec[10:])
	val, com := rest, ""
	t := strings.TrimLeft(rest, " ")
	if strings.HasPrefix(t, "'") {
		// String: find the closing quote ('' is an escaped quote).
		i := 1
		for i < len(t) {
			if t[i] == '\'' {
				if i+1 < len(t) && t[i+1] == '\'' {
					i += 2
					continue
				}
				break
			}
			i++
		}
		val = t[:min(i+1, len(t))]
		if j := strings.Index(t[min(i+1, len(t)):], "/"); j >= 0 {
			com = t[i+1+j+1:]
		}
	} else if j := strings.Index(rest, "/"); j >= 0 {
		val, com = rest[:j], rest[j+1:]
	}
	return Card{Key: key, Value: strings.TrimSpace(val), Comment: strings.TrimSpace(com)}
}

// StringValue returns a card's value with string quotes removed.
func (c Card) StringValue() string {
	v := c.Value
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.TrimRight(strings.ReplaceAll(v[1:len(v)-1], "''", "'"), " ")
	}
	return v
}

// Read reads a FITS primary-HDU image. Axes beyond the second must have
// length 1.
func Read(r io.Reader) (*Image, error) {
	var cards []Card
	rec := make([]byte, 80)
	nrec := 0
	for {
		if _, err := io.ReadFull(r, rec); err != nil {
			return nil, fmt.Errorf("%w: header ends after %d cards without END: %v", ErrFormat, nrec, err)
		}
		nrec++
		if nrec == 1 && string(rec[:9]) != "SIMPLE  =" {
			return nil, fmt.Errorf("%w: first card is %q, want SIMPLE", ErrFormat, strings.TrimSpace(string(rec[:20])))
		}
		c := parseCard(rec)
		if c.Key == "END" {
			break
		}
		if nrec > 100000 {
			return nil, fmt.Errorf("%w: header longer than 100000 cards", ErrFormat)
		}
		cards = append(cards, c)
	}
	if skip := (BlockSize - (nrec*80)%BlockSize) % BlockSize; skip > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(skip)); err != nil {
			return nil, fmt.Errorf("%w: header padding: %v", ErrFormat, err)
		}
	}
	kv := map[string]Card{}
	for _, c := range cards {
		if _, ok := kv[c.Key]; !ok {
			kv[c.Key] = c
		}
	}
	num := func(key string, def float64) (float64, error) {
		c, ok := kv[key]
		if !ok {
			return def, nil
		}
		v, err := strconv.ParseFloat(strings.Replace(c.Value, "D", "E", 1), 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s = %q: not a number", ErrFormat, key, c.Value)
		}
		return v, nil
	}
	bitpix, err := num("BITPIX", 0)
	if err != nil {
		return nil, err
	}
	naxis, err := num("NAXIS", 0)
	if err != nil {
		return nil, err
	}
	if naxis < 2 || naxis > 999 {
		return nil, fmt.Errorf("%w: NAXIS = %v: want a 2-D image", ErrFormat, naxis)
	}
	var dims []int
	for i := 1; i <= int(naxis); i++ {
		v, err := num(fmt.Sprintf("NAXIS%d", i), -1)
		if err != nil {
			return nil, err
		}
		if v < 1 || v > 1<<20 || v != math.Trunc(v) {
			return nil, fmt.Errorf("%w: NAXIS%d = %v", ErrFormat, i, v)
		}
		if i > 2 && v != 1 {
			return nil, fmt.Errorf("%w: NAXIS%d = %v: only 2-D images (extra axes of length 1) are supported", ErrFormat, i, v)
		}
		dims = append(dims, int(v))
	}
	w, h := dims[0], dims[1]
	if w*h > 1<<28 {
		return nil, fmt.Errorf("%w: %d×%d image is too large", ErrFormat, w, h)
	}
	bscale, err := num("BSCALE", 1)
	if err != nil {
		return nil, err
	}
	bzero, err := num("BZERO", 0)
	if err != nil {
		return nil, err
	}
	im := &Image{Width: w, Height: h, Data: make([]float32, w*h)}
	switch bitpix {
	case -32:
		buf := make([]byte, 4*w*h)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("%w: data: want %d bytes: %v", ErrFormat, len(buf), err)
		}
		for i := range im.Data {
			v := float64(math.Float32frombits(binary.BigEndian.Uint32(buf[4*i:])))
			im.Data[i] = float32(v*bscale + bzero)
		}
	case -64:
		buf := make([]byte, 8*w*h)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("%w: data: want %d bytes: %v", ErrFormat, len(buf), err)
		}
		for i := range im.Data {
			v := math.Float64frombits(binary.BigEndian.Uint64(buf[8*i:]))
			im.Data[i] = float32(v*bscale + bzero)
		}
	default:
		return nil, fmt.Errorf("%w: BITPIX = %v: only -32 and -64 are supported", ErrFormat, bitpix)
	}
	fields := map[string]*float64{"CRVAL1": &im.WCS.RA, "CRVAL2": &im.WCS.Dec, "CRPIX1": &im.WCS.RefX, "CRPIX2": &im.WCS.RefY,
		"CDELT1": &im.WCS.DeltaX, "CDELT2": &im.WCS.DeltaY, "BMAJ": &im.BMaj, "BMIN": &im.BMin, "BPA": &im.BPA, "RESTFRQ": &im.FreqHz}
	for k, p := range fields {
		if *p, err = num(k, 0); err != nil {
			return nil, err
		}
	}
	if c, ok := kv["CTYPE1"]; ok {
		t := c.StringValue()
		if i := strings.LastIndex(t, "-"); i >= 0 && i+1 < len(t) {
			im.WCS.Projection = t[i+1:]
		}
	}
	im.BUnit = kv["BUNIT"].StringValue()
	im.Object = kv["OBJECT"].StringValue()
	im.Telescope = kv["TELESCOP"].StringValue()
	im.DateObs = kv["DATE-OBS"].StringValue()
	mapped := map[string]bool{"SIMPLE": true, "BITPIX": true, "NAXIS": true, "EXTEND": true, "CTYPE1": true, "CTYPE2": true,
		"CUNIT1": true, "CUNIT2": true, "RADESYS": true, "EQUINOX": true, "BUNIT": true, "OBJECT": true, "TELESCOP": true,
		"DATE-OBS": true, "BSCALE": true, "BZERO": true}
	for k := range fields {
		mapped[k] = true
	}
	for _, c := range cards {
		if mapped[c.Key] || strings.HasPrefix(c.Key, "NAXIS") {
			continue
		}
		im.Extra = append(im.Extra, c)
	}
	return im, nil
}
