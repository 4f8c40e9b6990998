# pareto.gp — written by kvsim report; run `gnuplot pareto.gp` in this directory to redraw
# pareto.png and pareto.svg from pareto.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'pareto.png'
set grid
set key outside right top
set title 'Pareto front, speedup vs fidelity: llama3.1-8b on h100-sxm, context 96256, batch 1, engine'
set xlabel 'decode speedup vs full (x)'
set ylabel 'mean attention-mass recall'
plot 'pareto.dat' index 0 using 1:2 with points pt 4 ps 1.5 title 'full', \
     'pareto.dat' index 1 using 1:2 with points pt 5 ps 1.5 title 'rocketkv', \
     'pareto.dat' index 2 using 1:2 with points pt 6 ps 1.5 title 'quest', \
     'pareto.dat' index 3 using 1:2 with points pt 7 ps 1.5 title 'snapkv-gqa', \
     'pareto.dat' index 4 using 1:2 with points pt 8 ps 1.5 title 'streaming', \
     'pareto.dat' index 5 using 1:2 with lines lw 2 lc rgb 'black' title 'Pareto front'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'pareto.svg'
set grid
set key outside right top
set title 'Pareto front, speedup vs fidelity: llama3.1-8b on h100-sxm, context 96256, batch 1, engine'
set xlabel 'decode speedup vs full (x)'
set ylabel 'mean attention-mass recall'
plot 'pareto.dat' index 0 using 1:2 with points pt 4 ps 1.5 title 'full', \
     'pareto.dat' index 1 using 1:2 with points pt 5 ps 1.5 title 'rocketkv', \
     'pareto.dat' index 2 using 1:2 with points pt 6 ps 1.5 title 'quest', \
     'pareto.dat' index 3 using 1:2 with points pt 7 ps 1.5 title 'snapkv-gqa', \
     'pareto.dat' index 4 using 1:2 with points pt 8 ps 1.5 title 'streaming', \
     'pareto.dat' index 5 using 1:2 with lines lw 2 lc rgb 'black' title 'Pareto front'
unset output
