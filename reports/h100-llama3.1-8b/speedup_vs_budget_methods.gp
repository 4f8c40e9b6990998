# speedup_vs_budget_methods.gp — written by kvsim report; run `gnuplot speedup_vs_budget_methods.gp` in this directory to redraw
# speedup_vs_budget_methods.png and speedup_vs_budget_methods.svg from speedup_vs_budget_methods.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'speedup_vs_budget_methods.png'
set grid
set key outside right top
set title 'speedup vs full by method: llama3.1-8b on h100-sxm, context 96256, engine, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget_methods.dat' index 0 using 1:2 with linespoints title 'rocketkv', \
     'speedup_vs_budget_methods.dat' index 1 using 1:2 with linespoints title 'quest', \
     'speedup_vs_budget_methods.dat' index 2 using 1:2 with linespoints title 'snapkv-gqa', \
     'speedup_vs_budget_methods.dat' index 3 using 1:2 with linespoints title 'streaming'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'speedup_vs_budget_methods.svg'
set grid
set key outside right top
set title 'speedup vs full by method: llama3.1-8b on h100-sxm, context 96256, engine, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget_methods.dat' index 0 using 1:2 with linespoints title 'rocketkv', \
     'speedup_vs_budget_methods.dat' index 1 using 1:2 with linespoints title 'quest', \
     'speedup_vs_budget_methods.dat' index 2 using 1:2 with linespoints title 'snapkv-gqa', \
     'speedup_vs_budget_methods.dat' index 3 using 1:2 with linespoints title 'streaming'
unset output
