package generate

import (
	"math"
	"math/rand/v2"
)

// LatentStream is the PCG stream (second seed word) every latent vector is drawn from:
// the bytes "atelierz". Changing it changes every seeded design.
const LatentStream uint64 = 0x61_74_65_6c_69_65_72_7a

// Latent returns the latent vector of a seed: size standard-normal float32 values.
//
// The values come from math/rand/v2's PCG (PCG-DXSM, a specified algorithm) seeded
// with (seed, LatentStream), turned into normal deviates with Marsaglia's polar method:
// two uniforms u, v in (-1, 1) from the top 53 bits of two draws, rejected unless
// 0 < s = u*u + v*v < 1, then u*f and v*f with f = sqrt(-2 ln(s) / s). Only IEEE-754
// operations that round exactly are used (the logarithm is computed here, with every
// product rounded before it is added, so no platform's fused multiply-add or assembly
// routine changes a bit), so a seed gives the same vector on every platform.
func Latent(seed uint64, size int) []float32 {
	src := rand.NewPCG(seed, LatentStream)
	out := make([]float32, size)
	for i := 0; i < size; {
		u, v := uniform(src), uniform(src)
		s := float64(u*u) + float64(v*v)
		if s >= 1 || s == 0 {
			continue
		}
		f := math.Sqrt(-2 * portableLog(s) / s)
		out[i] = float32(float64(u * f))
		if i+1 < size {
			out[i+1] = float32(float64(v * f))
		}
		i += 2
	}
	return out
}

// uniform returns a uniform value in [-1, 1) from the top 53 bits of one draw.
func uniform(src *rand.PCG) float64 {
	return float64(src.Uint64()>>11)*0x1p-52 - 1
}

// portableLog is the natural logarithm of x in (0, 1], FreeBSD's e_log.c algorithm as
// in Go's math package, with every product rounded explicitly (a conversion to float64
// forbids the compiler to fuse it with the following addition).
func portableLog(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		l1    = 6.666666666666735130e-01
		l2    = 3.999999999940941908e-01
		l3    = 2.857142874366239149e-01
		l4    = 2.222219843214978396e-01
		l5    = 1.818357216161805012e-01
		l6    = 1.531383769920937332e-01
		l7    = 1.479819860511658591e-01
	)
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f, k := f1-1, float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * (l1 + float64(s4*(l3+float64(s4*(l5+float64(s4*l7)))))))
	t2 := float64(s4 * (l2 + float64(s4*(l4+float64(s4*l6)))))
	r := t1 + t2
	hfsq := float64(0.5 * float64(f*f))
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f)
}

// Slerp returns the point a fraction t of the way from a to b along the great circle
// through them (spherical interpolation, which keeps a Gaussian latent's typical
// length along the way, unlike a straight line). Nearly parallel vectors, and
// vectors of zero length, are interpolated linearly. t = 0 gives a and t = 1 gives b.
func Slerp(a, b []float32, t float64) []float32 {
	out := make([]float32, len(a))
	switch t {
	case 0:
		copy(out, a)
		return out
	case 1:
		copy(out, b)
		return out
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	wa, wb := 1-t, t
	if na > 0 && nb > 0 {
		cos := max(-1, min(1, dot/math.Sqrt(na*nb)))
		if omega := math.Acos(cos); math.Sin(omega) > 1e-6 {
			wa = math.Sin((1-t)*omega) / math.Sin(omega)
			wb = math.Sin(t*omega) / math.Sin(omega)
		}
	}
	for i := range a {
		out[i] = float32(wa*float64(a[i]) + wb*float64(b[i]))
	}
	return out
}
