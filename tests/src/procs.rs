//! This host's processes as tests look for them: by a token the test put in
//! their command line (a container's script, a hung call), so a test can
//! tell whether what it started is still running.

/// Host pids of the processes whose command line holds `token`.
pub fn processes_with(token: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("listing /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(token))
        })
        .collect()
}
