package agents_test

import (
	"encoding/json"
	"fmt"

	"github.com/cosmic-horizons/horizons/agents"
)

// Validate parameters through the registry: defaults are filled in, and a bad
// value names its field.
func ExampleRegistry_Lookup() {
	reg := agents.NewRegistry()
	a, _ := reg.Lookup("ImageReconstruction") // the original platform's name
	fmt.Println(a.Name())
	p, _ := a.ValidateParams(json.RawMessage(`{"image_size":512,"deconvolver":"hogbom"}`))
	var m map[string]any
	json.Unmarshal(p, &m)
	fmt.Println(m["image_size"], m["deconvolver"], m["gain"])
	_, err := a.ValidateParams(json.RawMessage(`{"image_size":500}`))
	fmt.Println(err)
	// Output:
	// image-reconstruction
	// 512 hogbom 0.1
	// agents: image-reconstruction: parameter image_size = 500: must be a power of two
}
