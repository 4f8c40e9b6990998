# speedup_vs_budget_methods.gp — written by kvsim report; run `gnuplot speedup_vs_budget_methods.gp` in this directory to redraw
# speedup_vs_budget_methods.png and speedup_vs_budget_methods.svg from speedup_vs_budget_methods.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'speedup_vs_budget_methods.png'
set grid
set key outside right top
set title 'speedup vs full by method: llama3.1-70b on h100-sxm, context 131072, engine, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget_methods.dat' index 0 using 1:2 with linespoints title 'rocketkv'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'speedup_vs_budget_methods.svg'
set grid
set key outside right top
set title 'speedup vs full by method: llama3.1-70b on h100-sxm, context 131072, engine, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget_methods.dat' index 0 using 1:2 with linespoints title 'rocketkv'
unset output
