// The program that each layer check links (CMakeLists.txt, "enforced by
// the linker"): it is never run; linking it is the check.
int main() {
  return 0;
}
