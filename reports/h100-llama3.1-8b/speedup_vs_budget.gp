# speedup_vs_budget.gp — written by kvsim report; run `gnuplot speedup_vs_budget.gp` in this directory to redraw
# speedup_vs_budget.png and speedup_vs_budget.svg from speedup_vs_budget.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'speedup_vs_budget.png'
set grid
set key outside right top
set title 'speedup vs full: rocketkv, llama3.1-8b on h100-sxm, TP 1, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget.dat' index 0 using 1:2 with linespoints lc 1 pt 7 dt 1 title 'engine 16K', \
     'speedup_vs_budget.dat' index 1 using 1:2 with linespoints lc 2 pt 7 dt 1 title 'engine 31K', \
     'speedup_vs_budget.dat' index 2 using 1:2 with linespoints lc 3 pt 7 dt 1 title 'engine 64K', \
     'speedup_vs_budget.dat' index 3 using 1:2 with linespoints lc 4 pt 7 dt 1 title 'engine 94K', \
     'speedup_vs_budget.dat' index 4 using 1:2 with linespoints lc 1 pt 6 dt 2 title 'gpt-fast 16K', \
     'speedup_vs_budget.dat' index 5 using 1:2 with linespoints lc 2 pt 6 dt 2 title 'gpt-fast 31K', \
     'speedup_vs_budget.dat' index 6 using 1:2 with linespoints lc 3 pt 6 dt 2 title 'gpt-fast 64K', \
     'speedup_vs_budget.dat' index 7 using 1:2 with linespoints lc 4 pt 6 dt 2 title 'gpt-fast 94K'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'speedup_vs_budget.svg'
set grid
set key outside right top
set title 'speedup vs full: rocketkv, llama3.1-8b on h100-sxm, TP 1, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget.dat' index 0 using 1:2 with linespoints lc 1 pt 7 dt 1 title 'engine 16K', \
     'speedup_vs_budget.dat' index 1 using 1:2 with linespoints lc 2 pt 7 dt 1 title 'engine 31K', \
     'speedup_vs_budget.dat' index 2 using 1:2 with linespoints lc 3 pt 7 dt 1 title 'engine 64K', \
     'speedup_vs_budget.dat' index 3 using 1:2 with linespoints lc 4 pt 7 dt 1 title 'engine 94K', \
     'speedup_vs_budget.dat' index 4 using 1:2 with linespoints lc 1 pt 6 dt 2 title 'gpt-fast 16K', \
     'speedup_vs_budget.dat' index 5 using 1:2 with linespoints lc 2 pt 6 dt 2 title 'gpt-fast 31K', \
     'speedup_vs_budget.dat' index 6 using 1:2 with linespoints lc 3 pt 6 dt 2 title 'gpt-fast 64K', \
     'speedup_vs_budget.dat' index 7 using 1:2 with linespoints lc 4 pt 6 dt 2 title 'gpt-fast 94K'
unset output
