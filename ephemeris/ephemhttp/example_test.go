package ephemhttp_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/cosmic-horizons/horizons/ephemeris/ephemhttp"
)

func ExampleNewHandler() {
	srv := httptest.NewServer(ephemhttp.NewHandler(nil))
	defer srv.Close()
	for _, path := range []string{
		"/api/v1/ephemeris/julian?time=2000-01-01T12:00:00Z",
		"/api/v1/ephemeris/resolve?target=3C138",
		"/api/v1/ephemeris/position?body=pluto&time=2000-01-01T12:00:00Z",
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	// Output:
	// 200 {"delta_t_s":64.184,"jd_tt":2451545.0007428704,"jd_ut1":2451545,"jd_utc":2451545,"mjd_tt":51544.50074287038,"mjd_utc":51544.5,"tai_minus_utc_s":32}
	// 200 {"name":"3C 138","ra_deg":80.29119166666665,"dec_deg":16.63945888888889,"kind":"calibrator","aliases":["J0521+1638","3C138","0518+165","0521+166"]}
	// 400 {"error":{"code":"invalid_argument","field":"body","message":"unknown body \"pluto\" (sun, moon, mercury..neptune or a VLA calibrator)"}}
}
