// Package ephemhttp serves the ephemeris package over HTTP: positions,
// sidereal time, Julian dates, rise/transit/set and twilight, frame
// conversion, Moon illumination and phases, observability windows and
// target resolution, all under /api/v1/ephemeris/. Times are RFC 3339 UTC,
// angles degrees. Bad input answers 400 with
// {"error":{"code":"invalid_argument","message":"...","field":"<param>"}};
// successful answers carry Cache-Control (results depend only on the
// query, except where a default of "now" is used).
package ephemhttp
