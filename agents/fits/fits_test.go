package fits

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image/png"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func testImage() *Image {
	im := &Image{Width: 5, Height: 3, Data: make([]float32, 15),
		WCS:  WCS{RA: 150.25, Dec: -12.5, RefX: 3, RefY: 2, DeltaX: -1.0 / 3600, DeltaY: 1.0 / 3600},
		BMaj: 2.5 / 3600, BMin: 2.1 / 3600, BPA: -33.5, BUnit: "Jy/beam", Object: "it's a test", FreqHz: 3e9,
		Extra: []Card{{Key: "ORIGIN", Value: "'horizons'", Comment: "writer"}}}
	for i := range im.Data {
		im.Data[i] = float32(i)*0.25 - 1
	}
	im.Data[7] = float32(math.NaN())
	return im
}

func TestRoundTrip(t *testing.T) {
	im := testImage()
	path := filepath.Join(t.TempDir(), "x.fits")
	if err := WriteFile(path, im); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != 5 || got.Height != 3 {
		t.Fatalf("size %d×%d", got.Width, got.Height)
	}
	for i, v := range im.Data {
		g := got.Data[i]
		if !(v == g || math.IsNaN(float64(v)) && math.IsNaN(float64(g))) {
			t.Errorf("pixel %d: %v != %v", i, g, v)
		}
	}
	if got.WCS.RA != im.WCS.RA || got.WCS.Dec != im.WCS.Dec || got.WCS.RefX != 3 || got.WCS.RefY != 2 ||
		got.WCS.DeltaX != im.WCS.DeltaX || got.WCS.DeltaY != im.WCS.DeltaY || got.WCS.Projection != "SIN" {
		t.Errorf("WCS %+v, want %+v (SIN)", got.WCS, im.WCS)
	}
	if got.BMaj != im.BMaj || got.BMin != im.BMin || got.BPA != im.BPA || got.BUnit != "Jy/beam" || got.Object != "it's a test" || got.FreqHz != 3e9 {
		t.Errorf("keywords: %+v", got)
	}
	if len(got.Extra) != 1 || got.Extra[0].Key != "ORIGIN" || got.Extra[0].StringValue() != "horizons" || got.Extra[0].Comment != "writer" {
		t.Errorf("extra cards %+v", got.Extra)
	}
}

// TestLayout checks the bytes against the FITS standard: 80-byte cards,
// mandatory keywords first in fixed format, 2880-byte blocks, big-endian
// IEEE floats.
func TestLayout(t *testing.T) {
	var b bytes.Buffer
	im := testImage()
	if err := Write(&b, im); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	if len(raw)%BlockSize != 0 || len(raw) != 2*BlockSize {
		t.Fatalf("file length %d, want 2 blocks", len(raw))
	}
	want := []string{
		"SIMPLE  =                    T",
		"BITPIX  =                  -32",
		"NAXIS   =                    2",
		"NAXIS1  =                    5",
		"NAXIS2  =                    3",
	}
	for i, w := range want {
		if got := string(raw[i*80 : i*80+30]); got != w {
			t.Errorf("card %d = %q, want %q", i, got, w)
		}
	}
	hdr := string(raw[:BlockSize])
	if !strings.Contains(hdr, "CTYPE1  = 'RA---SIN'") || !strings.Contains(hdr, "CTYPE2  = 'DEC--SIN'") {
		t.Errorf("CTYPE cards missing or misplaced")
	}
	if i := strings.Index(hdr, "END     "); i < 0 || i%80 != 0 {
		t.Errorf("END card at %d", i)
	}
	// Pixel 1 (x=1, y=0) = -0.75, big-endian.
	if v := math.Float32frombits(binary.BigEndian.Uint32(raw[BlockSize+4:])); v != -0.75 {
		t.Errorf("pixel 1 = %v, want -0.75", v)
	}
}

func TestReadCASAStyle(t *testing.T) {
	// A 4-axis CASA-style header with BITPIX -64, BSCALE/BZERO and a
	// degenerate frequency and Stokes axis.
	var h bytes.Buffer
	for _, c := range []string{
		"SIMPLE  =                    T", "BITPIX  =                  -64", "NAXIS   =                    4",
		"NAXIS1  =                    2", "NAXIS2  =                    2", "NAXIS3  =                    1", "NAXIS4  =                    1",
		"BSCALE  =                  2.0", "BZERO   =                  1.0", "CTYPE1  = 'RA---SIN'", "BMAJ    =   6.944444444444E-04 / deg",
		"END",
	} {
		h.WriteString(c + strings.Repeat(" ", 80-len(c)))
	}
	for h.Len()%BlockSize != 0 {
		h.WriteByte(' ')
	}
	for _, v := range []float64{0, 1, 2, 3} {
		binary.Write(&h, binary.BigEndian, v)
	}
	im, err := Read(&h)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{1, 3, 5, 7} {
		if im.Data[i] != want {
			t.Errorf("pixel %d = %v, want %v", i, im.Data[i], want)
		}
	}
	if math.Abs(im.BMaj*3600-2.5) > 1e-9 {
		t.Errorf("BMAJ = %v", im.BMaj)
	}
}

func TestBadInput(t *testing.T) {
	cases := map[string]string{
		"empty":     "",
		"not fits":  strings.Repeat("x", 2880),
		"truncated": "SIMPLE  =                    T" + strings.Repeat(" ", 50),
	}
	for name, s := range cases {
		if _, err := Read(strings.NewReader(s)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
	var b bytes.Buffer
	if err := Write(&b, &Image{Width: 2, Height: 2, Data: make([]float32, 3)}); !errors.Is(err, ErrImage) {
		t.Errorf("short data: %v", err)
	}
	if err := Write(&b, &Image{Width: 1, Height: 1, Data: make([]float32, 1), BMaj: math.NaN()}); !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), "BMAJ") {
		t.Errorf("NaN BMAJ: %v", err)
	}
	// Truncated data.
	b.Reset()
	if err := Write(&b, testImage()); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(b.Bytes()[:BlockSize+10])); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated data: %v", err)
	}
}

func TestPNG(t *testing.T) {
	pix := []float32{0, 1, 2, 3, 4, 5} // 3×2, row 0 at the bottom
	var b bytes.Buffer
	if err := WritePNG(&b, pix, 3, 2, &PNGConfig{LowPercentile: 0.01, HighPercentile: 100}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("bounds %v", img.Bounds())
	}
	// FITS row 0 is the PNG's bottom row: (0,0) black, top-right white.
	if r, _, _, _ := img.At(0, 1).RGBA(); r != 0 {
		t.Errorf("bottom-left = %d, want 0", r)
	}
	if r, _, _, _ := img.At(2, 0).RGBA(); r != 0xffff {
		t.Errorf("top-right = %d, want white", r)
	}
	if err := WritePNG(&b, pix, 4, 2, nil); !errors.Is(err, ErrImage) {
		t.Errorf("mismatched size: %v", err)
	}
}
