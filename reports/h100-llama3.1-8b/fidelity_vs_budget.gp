# fidelity_vs_budget.gp — written by kvsim report; run `gnuplot fidelity_vs_budget.gp` in this directory to redraw
# fidelity_vs_budget.png and fidelity_vs_budget.svg from fidelity_vs_budget.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'fidelity_vs_budget.png'
set grid
set key outside right top
set title 'attention fidelity vs budget: llama3.1-8b, scored at context 16384'
set xlabel 'token budget t'
set ylabel 'mean attention-mass recall'
set logscale x 2
set yrange [0:1.02]
plot 'fidelity_vs_budget.dat' index 0 using 1:2 with linespoints title 'rocketkv', \
     'fidelity_vs_budget.dat' index 1 using 1:2 with linespoints title 'quest', \
     'fidelity_vs_budget.dat' index 2 using 1:2 with linespoints title 'snapkv-gqa', \
     'fidelity_vs_budget.dat' index 3 using 1:2 with linespoints title 'streaming'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'fidelity_vs_budget.svg'
set grid
set key outside right top
set title 'attention fidelity vs budget: llama3.1-8b, scored at context 16384'
set xlabel 'token budget t'
set ylabel 'mean attention-mass recall'
set logscale x 2
set yrange [0:1.02]
plot 'fidelity_vs_budget.dat' index 0 using 1:2 with linespoints title 'rocketkv', \
     'fidelity_vs_budget.dat' index 1 using 1:2 with linespoints title 'quest', \
     'fidelity_vs_budget.dat' index 2 using 1:2 with linespoints title 'snapkv-gqa', \
     'fidelity_vs_budget.dat' index 3 using 1:2 with linespoints title 'streaming'
unset output
