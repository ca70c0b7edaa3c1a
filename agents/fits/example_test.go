package fits_test

import (
	"bytes"
	"fmt"

	"github.com/cosmic-horizons/horizons/agents/fits"
)

func Example() {
	im := &fits.Image{Width: 2, Height: 2, Data: []float32{0, 1, 2, 3.5},
		WCS:  fits.WCS{RA: 180, Dec: 34, RefX: 1.5, RefY: 1.5, DeltaX: -1.0 / 3600, DeltaY: 1.0 / 3600},
		BMaj: 2.5 / 3600, BMin: 2.5 / 3600, BUnit: "Jy/beam"}
	var b bytes.Buffer
	if err := fits.Write(&b, im); err != nil {
		panic(err)
	}
	back, err := fits.Read(&b)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Width, back.Height, back.Data[3], back.WCS.Projection, back.BUnit)
	// Output: 2 2 3.5 SIN Jy/beam
}
