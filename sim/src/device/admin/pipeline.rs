//! PipelineLoad: an image assembled from chunks, checked, then swapped in.

use super::*;

impl Device {
    pub(super) fn pipeline_chunk(&mut self, fi: usize, p: &abi::PipelineChunk) -> Res {
        let up = &mut self.pipeline;
        if p.flags & pipeline_flags::FIRST != 0 {
            // The size is checked before anything is allocated.
            let total = p.total_len.get();
            up.image = Vec::new();
            up.total = 0;
            up.received = 0;
            if total == 0 || total > dataplane::pipeline::limits::IMAGE_BYTES {
                return Err(AdminStatus::Invalid.into());
            }
            up.image = vec![0; total as usize];
            up.total = total;
        }
        let len = p.dma.len.get();
        if up.total == 0
            || p.total_len.get() != up.total
            || p.offset.get() != up.received
            || len > up.total - up.received
        {
            // Chunks arrive in order, from a FIRST one, for one image, and
            // none reaches past its end.
            return Err(AdminStatus::Invalid.into());
        }
        let off = p.offset.get() as usize;
        let len = len as usize;
        self.functions[fi]
            .dma
            .read(p.dma.addr.get(), &mut self.pipeline.image[off..off + len])
            .map_err(|_| Outcome::err(AdminStatus::DmaFault))?;
        self.pipeline.received += len as u32;
        if p.flags & pipeline_flags::LAST != 0 {
            // The image arrived whole: decode, check and run it. A bad
            // image changes nothing (the running program, or the built-in
            // switch, stays).
            let image = std::mem::take(&mut self.pipeline.image);
            self.pipeline.total = 0;
            if let Err(e) = self.switch.load(&image) {
                tracing::warn!(bytes = image.len(), "pipeline image refused: {e}");
                self.pipeline_error = Some(e.to_string());
                return Err(AdminStatus::Invalid.into());
            }
            self.pipeline_error = None;
            if let Some(p) = self.switch.program() {
                // Which executor runs it: compiled, or the reference and why.
                tracing::info!(
                    program = %p.program().name,
                    bytes = image.len(),
                    "pipeline loaded, {}",
                    p.backend()
                );
            }
            // The program's per-LIF meters start from the LIFs' settings.
            let now = self.now();
            for l in self.lifs.iter().flatten() {
                for r in [MeterResource::Packets, MeterResource::Bytes] {
                    let cfg = l.meters.applied(r);
                    self.switch.mirror_meter(l.id, &cfg, now);
                }
            }
        }
        Ok(Outcome::ok(self.pipeline.received, 0))
    }
}
