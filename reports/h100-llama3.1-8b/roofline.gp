# roofline.gp — written by kvsim report; run `gnuplot roofline.gp` in this directory to redraw
# roofline.png and roofline.svg from roofline.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'roofline.png'
set grid
set key outside right top
set title 'roofline h100-sxm (989 TFLOP/s bf16, 3.35 TB/s): decode step, llama3.1-8b, S=96256, B=1'
set key inside left top
set xlabel 'arithmetic intensity (FLOP/byte)'
set ylabel 'attained FLOP/s'
set logscale xy
set format y '%.0e'
set xrange [0.05:2000]
bw = 3.35e+12
peak = 9.894e+14
bweff = 2.9815e+12
cpeak = 6.398185841e+14
roof(x) = x*bw < peak ? x*bw : peak
roofeff(x) = x*bweff < cpeak ? x*bweff : cpeak
plot 'roofline.dat' index 0 using 1:2 with points pt 5 ps 2 title 'full kernels', '' index 0 using 1:2:3 with labels offset char 1,1 font ',8' notitle, \
     'roofline.dat' index 1 using 1:2 with points pt 7 ps 2 title 'rocketkv kernels', '' index 1 using 1:2:3 with labels offset char 1,-1 font ',8' notitle, \
     roof(x) with lines lw 2 lc rgb 'black' title 'datasheet roof', \
     roofeff(x) with lines dt 2 lc rgb 'gray40' title 'roof x efficiencies (hwmodels)'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'roofline.svg'
set grid
set key outside right top
set title 'roofline h100-sxm (989 TFLOP/s bf16, 3.35 TB/s): decode step, llama3.1-8b, S=96256, B=1'
set key inside left top
set xlabel 'arithmetic intensity (FLOP/byte)'
set ylabel 'attained FLOP/s'
set logscale xy
set format y '%.0e'
set xrange [0.05:2000]
bw = 3.35e+12
peak = 9.894e+14
bweff = 2.9815e+12
cpeak = 6.398185841e+14
roof(x) = x*bw < peak ? x*bw : peak
roofeff(x) = x*bweff < cpeak ? x*bweff : cpeak
plot 'roofline.dat' index 0 using 1:2 with points pt 5 ps 2 title 'full kernels', '' index 0 using 1:2:3 with labels offset char 1,1 font ',8' notitle, \
     'roofline.dat' index 1 using 1:2 with points pt 7 ps 2 title 'rocketkv kernels', '' index 1 using 1:2:3 with labels offset char 1,-1 font ',8' notitle, \
     roof(x) with lines lw 2 lc rgb 'black' title 'datasheet roof', \
     roofeff(x) with lines dt 2 lc rgb 'gray40' title 'roof x efficiencies (hwmodels)'
unset output
