package imaging

import (
	"fmt"
	"os"

	"github.com/cosmic-horizons/horizons/agents/fits"
)

func writePNGFile(path string, f *fits.Image) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("png: %w", err)
	}
	if err := fits.WritePNG(out, f.Data, f.Width, f.Height, &fits.PNGConfig{Asinh: true}); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("png: %w", err)
	}
	return nil
}
